// Package remote talks HTTP to the rest-server directly, for what needs no
// restic run: checking credentials, listing a repository's snapshot files
// (their names are the snapshot ids), reading its files, and writing a new
// repository's folders, key and config.
package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrAuth is HTTP 401: wrong user or password.
	ErrAuth = errors.New("wrong user or password")
	// ErrUnreachable means no answer came from the server: its name did
	// not resolve, the connection was refused, TLS failed or it timed out.
	ErrUnreachable = errors.New("server unreachable")
	// ErrServer is a 5xx answer: the server is up but cannot serve us now.
	ErrServer = errors.New("server error")
	// ErrInsecure is plain http to a host that is not this machine.
	ErrInsecure = errors.New("https is required")
)

// Server is one rest-server account.
type Server struct {
	URL      string // base URL, e.g. https://cloud.example.org
	User     string
	Password string
	// Timeout bounds each request; a pull that cannot reach the server
	// must not delay the game. Default 10s.
	Timeout time.Duration
	Client  *http.Client
}

// CheckURL validates a server URL: http(s), a host, and https unless the
// host is a loopback address or insecure is set.
func CheckURL(raw string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%q is not a server URL; use the form https://host[:port]", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("the server URL must not contain credentials; pass them with --token or --token-file")
	}
	if u.Scheme == "http" && !insecure && !IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w for %s (plain http would send the password in the clear); use https:// or, on a trusted network, --insecure-http", ErrInsecure, u.Host)
	}
	return u, nil
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RepoURL is the restic repository URL of an instance (without credentials).
func (s Server) RepoURL(instanceID string) string {
	return "rest:" + s.base() + s.repoPath(instanceID, "")
}

func (s Server) base() string { return strings.TrimRight(s.URL, "/") }

func (s Server) do(ctx context.Context, method, path string, accept string) (*http.Response, error) {
	return s.request(ctx, method, path, "Accept", accept)
}

// doRange is a GET of part of a file (rng is a Range header value; "" for all).
func (s Server) doRange(ctx context.Context, path, rng string) (*http.Response, error) {
	return s.request(ctx, http.MethodGet, path, "Range", rng)
}

// request sends one request with an optional header.
func (s Server) request(ctx context.Context, method, path, header, value string) (*http.Response, error) {
	return s.send(ctx, method, path, header, value, nil)
}

// send is request with a body (nil for none).
func (s Server) send(ctx context.Context, method, path, header, value string, body []byte) (*http.Response, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base()+path, r)
	if err != nil {
		cancel()
		return nil, err
	}
	req.SetBasicAuth(s.User, s.Password)
	// Told apart from restic's requests in a server's logs.
	req.Header.Set("User-Agent", "instance-sync")
	if value != "" {
		req.Header.Set(header, value)
	}
	client := s.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		timedOut := ctx.Err() != nil
		cancel()
		return nil, s.unreachable(err, timedOut, timeout)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// defaultClient keeps up to 16 idle connections to a server, where
// http.DefaultClient keeps 2: a sync sends up to 8 requests at once (index
// files, snapshot files, trees, the key and lock lists), and each
// connection made again costs round trips (TCP, TLS) through a real
// network.
var defaultClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: t}
}()

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

// unreachable says why a request got no answer, with the fix: the name
// does not resolve, nothing listens on the port, the port does not speak
// TLS, the certificate is not trusted, or no answer in time. Each wraps
// ErrUnreachable, so a pull still warns and lets the game start.
func (s Server) unreachable(err error, timedOut bool, timeout time.Duration) error {
	host := s.base()
	if u, perr := url.Parse(s.URL); perr == nil && u.Host != "" {
		host = u.Host
	}
	var dnsErr *net.DNSError
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var ne net.Error
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: cannot find %s (DNS lookup failed); check the server URL's spelling and this computer's network connection", ErrUnreachable, dnsErr.Name)
	case isRefused(err):
		return fmt.Errorf("%w: connection refused by %s (is the server running, and is the port in the URL right?)", ErrUnreachable, host)
	case errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &recErr):
		return fmt.Errorf("%w: TLS handshake with %s failed: it does not speak https (is the URL http://%s?)", ErrUnreachable, host, host)
	case errors.As(err, &certErr):
		return fmt.Errorf("%w: TLS handshake with %s failed: its certificate is not trusted (%v); check the URL, or ask the server's operator", ErrUnreachable, host, certErr.Err)
	case timedOut || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %s did not answer within %s; check this computer's network connection, or try again later", ErrUnreachable, s.base(), timeout)
	}
	return fmt.Errorf("%w: %s: %v; check this computer's network connection, or try again later", ErrUnreachable, s.base(), trimURL(err))
}

// isRefused reports a connection refused: nothing listens on the port.
// Windows reports WSAECONNREFUSED (10061) instead of ECONNREFUSED.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.Errno(10061))
}

// trimURL drops the request URL from a transport error; it is in the
// message already and may be long.
func trimURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Check verifies the credentials: the account's folder must be readable.
// It returns nil when the server accepts them (whether or not the instance
// repository exists yet).
func (s Server) Check(ctx context.Context, instanceID string) error {
	resp, err := s.do(ctx, http.MethodHead, s.repoPath(instanceID, "config"), "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound {
		return nil
	}
	return s.statusError(resp, "", "ask the server's operator")
}

// statusError is the error for an answer that is neither a success nor a
// not-found the caller handles: ErrAuth for 401/403, ErrServer for 5xx.
// doing ("listing snapshots") and also (another way out) are optional.
func (s Server) statusError(resp *http.Response, doing, also string) error {
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w for %s", ErrAuth, s.base())
	}
	msg := s.base() + " answered " + resp.Status
	if doing != "" {
		msg += " " + doing
	}
	msg += "; try again later"
	if also != "" {
		msg += " or " + also
	}
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w: %s", ErrServer, msg)
	}
	return errors.New(msg)
}

// Listing is what the server holds for one instance.
type Listing struct {
	Exists    bool             // the repository has been initialised
	Snapshots map[string]int64 // snapshot id → file size
}

// ListSnapshots lists <repo>/snapshots/ with REST API v2. A repository that
// does not exist yet gives Exists false and no error.
func (s Server) ListSnapshots(ctx context.Context, instanceID string) (Listing, error) {
	entries, found, err := s.list(ctx, instanceID, "snapshots", 64<<20)
	if err != nil || !found {
		return Listing{}, err
	}
	l := Listing{Exists: true, Snapshots: make(map[string]int64, len(entries))}
	for _, e := range entries {
		l.Snapshots[e.Name] = e.Size
	}
	return l, nil
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// StorageFullError is the server refusing uploads because the account's
// storage is full; Used and Quota are 0 when the server did not say.
type StorageFullError struct {
	Used, Quota int64
}

func (e *StorageFullError) Error() string {
	if e.Quota <= 0 {
		return "the server's storage is full (it refused the upload with HTTP 507); your progress is safe on this computer; ask your server's admins"
	}
	return fmt.Sprintf("your cloud storage is full: %s of %s; ask your server's admins", DecimalSize(e.Used), DecimalSize(e.Quota))
}

// DecimalSize writes n bytes in decimal units with one decimal ("10.0 GB"),
// as storage is sold.
func DecimalSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := -1
	for f >= 999.95 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// StorageFull asks a cloud-svc server how full the account is (GET
// /<user>/.storage). Any other server, or any failure, gives the error
// without numbers.
func (s Server) StorageFull(ctx context.Context) *StorageFullError {
	resp, err := s.do(ctx, http.MethodGet, "/"+url.PathEscape(s.User)+"/.storage", "")
	if err != nil {
		return &StorageFullError{}
	}
	defer resp.Body.Close()
	var st struct {
		Used  int64 `json:"used_bytes"`
		Quota int64 `json:"quota_bytes"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&st) != nil {
		return &StorageFullError{}
	}
	return &StorageFullError{Used: st.Used, Quota: st.Quota}
}
