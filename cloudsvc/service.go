// Package cloudsvc is the operator's server for instance-sync: a public port
// that serves the upstream restic rest-server handler (private repositories,
// append-only) authenticated against cloud-svc's own account store, and an
// admin port for provisioning accounts, rotating passwords and running
// retention, which clients cannot do on an append-only repository.
//
// Everything lives in one data directory:
//
//	<data>/accounts.db   bbolt account store
//	<data>/server.key    AES-256 key that seals repository passwords (0600)
//	<data>/admin.token   admin bearer token (0600, unless --admin-token-file)
//	<data>/repos/<user>/<instance>/   restic repositories
//	<data>/deleted/      accounts deleted without purge
//	<data>/cache/restic  restic's cache for the server's own runs
package cloudsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// Config is everything the service needs; Main fills it from flags.
type Config struct {
	DataDir           string
	AdminTokenFile    string // default <data>/admin.token
	PublicURL         string // returned to new accounts; default derived from the listener
	ResticBinary      string // resolved restic path; empty disables retention and rotation
	Policy            Policy
	KeepSafety        time.Duration
	RetentionInterval time.Duration
	ResticConcurrency int           // parallel restic runs, default 2
	BcryptCost        int           // default bcrypt.DefaultCost; tests lower it
	AuthCacheTTL      time.Duration // default 5m
	Log               io.Writer     // default os.Stderr
	Now               func() time.Time

	// Store is "" (bbolt in <data>/accounts.db) or a postgres:// URL;
	// StorePassword overrides $PGPASSWORD / ~/.pgpass when not empty.
	Store         string
	StorePassword string
	// ServerKey, when set (64 hex digits), is used instead of
	// <data>/server.key, e.g. from a secret every node is given.
	ServerKey string
	// DefaultQuota is the storage limit of accounts without their own, in
	// bytes; 0 means none.
	DefaultQuota int64
	// NodeName labels this node's metrics and log (default: host name).
	NodeName string
	// AccountCacheTTL is how long a node authenticates from its copy of an
	// account; default 1s with a shared store (another node's disable or
	// rotation takes that long to reach this node), 1m with bbolt (every
	// write is this node's and drops the copy at once); negative: no copy.
	AccountCacheTTL time.Duration
	// RotationGrace is how long a rotation waits after switching the
	// password before it re-scans for repositories, so requests other
	// nodes authenticated just before the switch have finished. Used only
	// with a shared store; cloud-svc's flag defaults to 1m.
	RotationGrace time.Duration
}

// Service is one running cloud-svc.
type Service struct {
	cfg        Config
	store      Store // accounts, with writes dropping the auth copies
	accounts   *cachingStore
	sealer     *sealer
	cache      *authCache
	restic     *resticRunner
	adminToken string
	reposDir   string
	log        *log.Logger
	metrics    *metrics
	sem        chan struct{}
	now        func() time.Time

	// gates let rotation and deletion wait for this node's in-flight
	// requests of one player (see gate).
	userMu   sync.Mutex
	gates    map[string]*userGate
	switches atomic.Uint64 // account switches under a gate, see userGate
	dummyBcr []byte
}

// Open prepares the data directory (creating the server key and admin token
// on first start) and opens the account store.
func Open(cfg Config) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("no data directory; pass --data=DIR")
	}
	if cfg.AdminTokenFile == "" {
		cfg.AdminTokenFile = filepath.Join(cfg.DataDir, "admin.token")
	}
	if cfg.ResticConcurrency <= 0 {
		cfg.ResticConcurrency = 2
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = 5 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NodeName == "" {
		cfg.NodeName, _ = os.Hostname()
	}
	reposDir := filepath.Join(cfg.DataDir, "repos")
	for _, d := range []string{cfg.DataDir, reposDir, filepath.Join(cfg.DataDir, "cache", "restic")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w; check --data", d, err)
		}
	}
	var (
		store Store
		err   error
	)
	if IsPostgresURL(cfg.Store) {
		store, err = OpenPostgresStore(context.Background(), cfg.Store, cfg.StorePassword)
	} else {
		store, err = OpenBoltStore(filepath.Join(cfg.DataDir, "accounts.db"))
	}
	if err != nil {
		return nil, err
	}
	s, err := openWithStore(cfg, store, reposDir)
	if err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

func openWithStore(cfg Config, store Store, reposDir string) (*Service, error) {
	var err error
	keyHex, keyFrom := cfg.ServerKey, "the server key from the environment"
	if keyHex == "" {
		keyFrom = filepath.Join(cfg.DataDir, "server.key")
		keyHex, err = loadOrCreateSecretFile(keyFrom, newServerKey)
		if err != nil {
			return nil, err
		}
	}
	sl, err := newSealer(keyHex)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFrom, err)
	}
	token, err := loadOrCreateSecretFile(cfg.AdminTokenFile, func() (string, error) { return randomString(32) })
	if err != nil {
		return nil, err
	}
	cache, err := newAuthCache(cfg.AuthCacheTTL)
	if err != nil {
		return nil, err
	}
	// A hash to compare against for unknown users, so a miss costs as much
	// as a wrong password and does not reveal which names exist.
	dummy, err := bcrypt.GenerateFromPassword([]byte("cloud-svc unknown user"), cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	if cfg.AccountCacheTTL == 0 {
		cfg.AccountCacheTTL = time.Minute
		if store.Shared() {
			cfg.AccountCacheTTL = time.Second
		}
	}
	accounts := newCachingStore(store, cfg.AccountCacheTTL)
	s := &Service{
		cfg:        cfg,
		store:      accounts,
		accounts:   accounts,
		sealer:     sl,
		cache:      cache,
		adminToken: token,
		reposDir:   reposDir,
		log:        log.New(cfg.Log, "cloud-svc: ", log.LstdFlags),
		metrics:    newMetrics(cfg.NodeName),
		sem:        make(chan struct{}, cfg.ResticConcurrency),
		now:        cfg.Now,
		gates:      map[string]*userGate{},
		dummyBcr:   dummy,
	}
	s.useRestic(cfg.ResticBinary)
	return s, nil
}

// useRestic sets the restic the server runs for its own maintenance; empty
// leaves those operations off. Called before Serve.
func (s *Service) useRestic(bin string) {
	s.cfg.ResticBinary = bin
	s.restic = nil
	if bin != "" {
		s.restic = &resticRunner{bin: bin, cacheDir: filepath.Join(s.cfg.DataDir, "cache", "restic")}
	}
}

// Close closes the account store.
func (s *Service) Close() error { return s.store.Close() }

// AdminToken is the bearer token the admin API expects.
func (s *Service) AdminToken() string { return s.adminToken }

func (s *Service) repoPath(user, inst string) string {
	return filepath.Join(s.reposDir, user, inst)
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.sem }

// lockUser serialises admin operations on one player, across every node
// sharing the store (a PostgreSQL advisory lock, or in-process on bbolt).
func (s *Service) lockUser(ctx context.Context, user string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	unlock, err := s.store.Lock(ctx, "user:"+user)
	if err != nil {
		return nil, fmt.Errorf("another admin call on %s is still running: %w", user, err)
	}
	return unlock, nil
}

// gate is held shared by each of user's HTTP requests and exclusively for the
// instant a rotation or deletion switches the account, so no request
// authenticated with the old password is still running afterwards.
func (s *Service) gate(user string) *userGate {
	s.userMu.Lock()
	defer s.userMu.Unlock()
	g := s.gates[user]
	if g == nil {
		g = &userGate{switches: &s.switches}
		s.gates[user] = g
	}
	return g
}

// userGate is the per-user gate.
type userGate struct {
	sync.RWMutex
	switches *atomic.Uint64
}

// Switch takes the gate exclusively for an account switch, and counts it:
// a request re-authenticates under the gate only when some switch happened
// since it authenticated.
func (g *userGate) Switch() {
	g.Lock()
	g.switches.Add(1)
}

var (
	userRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	instanceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
)

// reservedUsers would shadow the public port's own endpoints. "metrics" is
// allowed on purpose: as in rest-server, that account may scrape /metrics.
var reservedUsers = map[string]bool{"healthz": true}

func validUser(u string) bool {
	return userRE.MatchString(u) && !reservedUsers[u]
}

// validInstance also refuses restic's own directory names, so a repository
// cannot be created at /<user>/ itself.
func validInstance(id string) bool {
	switch id {
	case "data", "index", "keys", "locks", "snapshots", "config":
		return false
	}
	return instanceRE.MatchString(id)
}

// instances lists user's repositories: directories holding a restic config.
func (s *Service) instances(user string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.reposDir, user))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || !validInstance(e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.reposDir, user, e.Name(), "config")); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// repoUsage walks one repository: bytes on disk, and the newest snapshot file
// (name and modification time), which is when the last push finished.
func repoUsage(dir string) (size int64, newest string, newestTime time.Time, err error) {
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // pruned while we walked
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		size += fi.Size()
		if filepath.Base(filepath.Dir(p)) == "snapshots" && !strings.HasPrefix(d.Name(), ".") {
			if fi.ModTime().After(newestTime) || (fi.ModTime().Equal(newestTime) && d.Name() > newest) {
				newest, newestTime = d.Name(), fi.ModTime()
			}
		}
		return nil
	})
	return size, newest, newestTime, err
}

// metrics are cloud-svc's own counters, in a registry of the service so
// several services in one test binary do not collide; rest-server's blob
// counters live in the default registry and are served alongside.
type metrics struct {
	reg                *prometheus.Registry
	auth               *prometheus.CounterVec
	adminRequests      *prometheus.CounterVec
	retentionRuns      *prometheus.CounterVec
	snapshotsForgotten prometheus.Counter
	accountsCreated    prometheus.Counter
	rotations          prometheus.Counter
	quotaRefusals      prometheus.Counter
}

// newMetrics labels every cloud-svc metric with the node's name, so the
// nodes behind one load balancer are told apart when scraped together.
func newMetrics(node string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudsvc_auth_total",
			Help: "Public-port authentications by result (ok, cached, wrong, disabled, missing).",
		}, []string{"result"}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudsvc_admin_requests_total",
			Help: "Admin API requests by status code.",
		}, []string{"code"}),
		retentionRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudsvc_retention_runs_total",
			Help: "Retention runs by result.",
		}, []string{"result"}),
		snapshotsForgotten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cloudsvc_retention_snapshots_forgotten_total",
			Help: "Snapshots removed by retention.",
		}),
		accountsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cloudsvc_accounts_created_total",
			Help: "Accounts created through the admin API.",
		}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cloudsvc_password_rotations_total",
			Help: "Password rotations through the admin API.",
		}),
	}
	m.quotaRefusals = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloudsvc_quota_refusals_total",
		Help: "Uploads refused with 507 because the account's storage is full.",
	})
	prometheus.WrapRegistererWith(prometheus.Labels{"node": node}, m.reg).MustRegister(
		m.auth, m.adminRequests, m.retentionRuns, m.snapshotsForgotten, m.accountsCreated, m.rotations, m.quotaRefusals)
	return m
}

// Serve runs the public and admin servers on the given listeners (and the
// retention loop) until ctx ends, then shuts them down gracefully. With
// tlsCert and tlsKey the public port speaks HTTPS.
func (s *Service) Serve(ctx context.Context, public, admin net.Listener, tlsCert, tlsKey string) error {
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = derivePublicURL(public.Addr(), tlsCert != "")
	}
	pubHandler, err := s.PublicHandler()
	if err != nil {
		return err
	}
	pub := &http.Server{Handler: pubHandler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: s.log}
	adm := &http.Server{Handler: s.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.log}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() {
		var err error
		if tlsCert != "" {
			err = pub.ServeTLS(public, tlsCert, tlsKey)
		} else {
			err = pub.Serve(public)
		}
		errc <- fmt.Errorf("public port: %w", err)
	}()
	go func() { errc <- fmt.Errorf("admin port: %w", adm.Serve(admin)) }()
	go s.retentionLoop(ctx, s.cfg.RetentionInterval)
	s.log.Printf("public port on %s (%s), admin port on %s (node %s, %s)", public.Addr(), s.cfg.PublicURL, admin.Addr(), s.cfg.NodeName, s.storeName())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	cancel()
	shut, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	pub.Shutdown(shut)
	adm.Shutdown(shut)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// derivePublicURL turns the public listener's address into the URL players
// are given when the operator did not pass --public-url.
func derivePublicURL(addr net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// storeName says which account store serves, for the start-up line.
func (s *Service) storeName() string {
	if s.store.Shared() {
		return "accounts in PostgreSQL"
	}
	return "accounts in " + filepath.Join(s.cfg.DataDir, "accounts.db")
}
