package cloudsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	restserver "github.com/restic/rest-server"
	"golang.org/x/crypto/bcrypt"
)

// proxyAuthHeader carries the authenticated user from our wrapper to the
// rest-server handler (its ProxyAuthUsername mode). The wrapper deletes any
// copy a client sent, so only cloud-svc can set it.
const proxyAuthHeader = "X-Cloud-Svc-Authenticated-User"

// PublicHandler is the public port: /healthz, /metrics (for the account named
// "metrics", as in rest-server), GET /<user>/ (the player's instances) and
// the rest-server data plane under /<user>/<instance>/.
func (s *Service) PublicHandler() (http.Handler, error) {
	rs := &restserver.Server{
		Path:              s.reposDir,
		PrivateRepos:      true,
		AppendOnly:        true,
		ProxyAuthUsername: proxyAuthHeader,
		Prometheus:        true,
	}
	h, err := restserver.NewHandler(rs)
	if err != nil {
		return nil, err
	}
	return &publicHandler{s: s, rest: h, metrics: s.metricsHandler()}, nil
}

func (s *Service) metricsHandler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, s.metrics.reg}, promhttp.HandlerOpts{})
}

type publicHandler struct {
	s       *Service
	rest    http.Handler
	metrics http.Handler
}

func (h *publicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Never trust a client's copy of the header, whatever happens next.
	r.Header.Del(proxyAuthHeader)
	if r.URL.Path == "/healthz" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
		return
	}
	switches := h.s.switches.Load()
	acct, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	user := acct.User
	if r.URL.Path == "/metrics" {
		if user != "metrics" {
			http.Error(w, "403 forbidden: /metrics is for the account named metrics", http.StatusForbidden)
			return
		}
		h.metrics.ServeHTTP(w, r)
		return
	}

	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if segs[0] != user {
		// rest-server's private-repos check would answer 401 too; we answer
		// before it so nothing about another player's paths is touched.
		http.Error(w, "401 unauthorized", http.StatusUnauthorized)
		return
	}
	if len(segs) == 1 || (len(segs) == 2 && segs[1] == "") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.s.listInstances(w, r, user)
		return
	}
	if segs[1] == ".storage" && len(segs) == 2 && r.Method == http.MethodGet {
		h.serveStorage(w, acct)
		return
	}
	if !validInstance(segs[1]) {
		http.Error(w, "404 not found: repositories live at /<user>/<instance id>/", http.StatusNotFound)
		return
	}
	g := h.s.gate(user)
	g.RLock()
	defer g.RUnlock()
	// Re-check under the gate if a rotation, disable or deletion switched
	// an account since we authenticated.
	if h.s.switches.Load() != switches {
		if acct, ok = h.authenticate(w, r); !ok {
			return
		}
	}
	r.Header.Set(proxyAuthHeader, user)
	if isListing(r, segs) {
		h.serveListing(w, r, user, segs[1])
		return
	}
	if !countedUpload(r, segs) {
		h.rest.ServeHTTP(w, r)
		return
	}
	release, ok := h.reserve(w, r, acct)
	if !ok {
		return
	}
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	h.rest.ServeHTTP(rec, r)
	if rec.code != http.StatusOK {
		release()
	}
}

// authenticate is Service.authenticate answered: when the request cannot
// go on, it has written the answer (503 when the store could not be
// asked, else 401 with the Basic challenge).
func (h *publicHandler) authenticate(w http.ResponseWriter, r *http.Request) (Account, bool) {
	acct, ok, err := h.s.authenticate(r)
	if err != nil {
		h.storeDown(w, err)
		return Account{}, false
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="cloud-svc"`)
		http.Error(w, "401 unauthorized", http.StatusUnauthorized)
		return Account{}, false
	}
	return acct, true
}

// authenticate checks basic auth against the store; an error means the
// store could not be asked (answered 503, not 401). Successful bcrypt
// checks are cached briefly; disabled accounts are refused every time.
func (s *Service) authenticate(r *http.Request) (Account, bool, error) {
	user, password, ok := r.BasicAuth()
	if !ok || user == "" {
		s.metrics.auth.WithLabelValues("missing").Inc()
		return Account{}, false, nil
	}
	a, err := s.accounts.cachedGet(user, s.now())
	if err != nil && !errors.Is(err, ErrNotFound) {
		// The store cannot answer: not the player's fault, and not a
		// reason to tell their client the password is wrong.
		return Account{}, false, err
	}
	if err != nil {
		// Same cost as a wrong password, so probing names is no faster.
		bcrypt.CompareHashAndPassword(s.dummyBcr, []byte(password))
		s.metrics.auth.WithLabelValues("wrong").Inc()
		return Account{}, false, nil
	}
	if a.Disabled {
		s.metrics.auth.WithLabelValues("disabled").Inc()
		return Account{}, false, nil
	}
	now := s.now()
	if s.cache.ok(user, password, a.Hash, now) {
		s.metrics.auth.WithLabelValues("cached").Inc()
		return a, true, nil
	}
	if bcrypt.CompareHashAndPassword(a.Hash, []byte(password)) != nil {
		s.metrics.auth.WithLabelValues("wrong").Inc()
		return Account{}, false, nil
	}
	s.cache.add(user, password, a.Hash, now)
	s.metrics.auth.WithLabelValues("ok").Inc()
	return a, true, nil
}

// Instance is one entry of GET /<user>/.
type Instance struct {
	ID       string     `json:"id"`
	Label    string     `json:"label"`
	LastPush *time.Time `json:"last_push"`
	Host     string     `json:"host"`
	Size     int64      `json:"size"`
}

// listInstances answers the setup picker. Size and the newest snapshot come
// from a walk of the repository directory (no decryption); label and host
// need the snapshot's content, so they are read with restic once per new
// snapshot and kept in the store (see InstanceInfo).
func (s *Service) listInstances(w http.ResponseWriter, r *http.Request, user string) {
	insts, err := s.instances(user)
	if err != nil {
		s.log.Printf("list instances of %s: %v", user, err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	out := make([]Instance, 0, len(insts))
	for _, id := range insts {
		out = append(out, s.describeInstance(r.Context(), user, id))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (s *Service) describeInstance(ctx context.Context, user, id string) Instance {
	inst := Instance{ID: id}
	size, newest, newestTime, err := repoUsage(s.repoPath(user, id))
	if err != nil {
		s.log.Printf("usage of %s/%s: %v", user, id, err)
	}
	inst.Size = size
	if newest == "" {
		return inst
	}
	t := newestTime.UTC()
	inst.LastPush = &t
	info, found, err := s.store.GetInstance(user, id)
	if err == nil && (!found || info.Newest != newest) {
		info, err = s.learnInstance(ctx, user, id, newest)
	}
	if err != nil {
		s.log.Printf("snapshots of %s/%s: %v", user, id, err)
		return inst
	}
	inst.Label, inst.Host = info.Label, info.Host
	if !info.LastPush.IsZero() {
		t := info.LastPush.UTC()
		inst.LastPush = &t
	}
	return inst
}

// learnInstance reads the repository's snapshots with restic and remembers
// the latest push's label and host.
func (s *Service) learnInstance(ctx context.Context, user, id, newest string) (InstanceInfo, error) {
	a, err := s.store.Get(user)
	if err != nil {
		return InstanceInfo{}, err
	}
	password, err := s.sealer.open(user, a.Secret)
	if err != nil {
		return InstanceInfo{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.acquire(ctx); err != nil {
		return InstanceInfo{}, err
	}
	snaps, err := s.restic.snapshots(ctx, s.repoPath(user, id), password)
	s.release()
	if err != nil {
		return InstanceInfo{}, err
	}
	info := InstanceInfo{Newest: newest}
	if latest, ok := latestPush(snaps); ok {
		info.Host = latest.Hostname
		if h, ok := latest.tag("host:"); ok && info.Host == "" {
			info.Host = h
		}
		info.Label, _ = latest.tag("label:")
		info.LastPush = latest.Time
	}
	if err := s.store.PutInstance(user, id, info); err != nil {
		return info, err
	}
	return info, nil
}

// latestPush is the newest kind:push snapshot, or the newest of any kind when
// the repository holds no push (made by another tool).
func latestPush(snaps []snapshot) (snapshot, bool) {
	if len(snaps) == 0 {
		return snapshot{}, false
	}
	sorted := append([]snapshot(nil), snaps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.After(sorted[j].Time) })
	for _, sn := range sorted {
		if sn.kind() == "push" {
			return sn, true
		}
	}
	return sorted[0], true
}

// repoDirOf is the on-disk folder of user's repositories.
func (s *Service) repoDirOf(user string) string { return filepath.Join(s.reposDir, user) }

// isListing reports a listing of a repository's folder (GET
// /<user>/<instance>/<type>/).
func isListing(r *http.Request, segs []string) bool {
	return r.Method == http.MethodGet && len(segs) == 4 && segs[3] == "" && segs[2] != ""
}

// serveListing works around a race in rest-server's listings: it reads the
// folder, then stats each entry, and an upload's temporary file renamed in
// between makes the whole answer a 404, which restic and instance-sync take
// for "no repository" or "no snapshots". A 404 for a repository that exists
// is answered again. The race needs an upload landing while the folder is
// read, so its odds grow with the folder's size and the upload rate: on a
// loaded machine with uploads back to back, a third of the listings of a
// folder of hundreds of files were seen to hit it, and six tries were not
// always enough. listingTries bounds the work of one listing.
func (h *publicHandler) serveListing(w http.ResponseWriter, r *http.Request, user, inst string) {
	for attempt := 1; ; attempt++ {
		buf := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
		// A copy each time: rest-server rewrites the request's path.
		h.rest.ServeHTTP(buf, r.Clone(r.Context()))
		if buf.code == http.StatusNotFound && attempt < listingTries {
			if _, err := os.Stat(filepath.Join(h.s.repoPath(user, inst), "config")); err == nil {
				continue
			}
		}
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.WriteHeader(buf.code)
		w.Write(buf.body.Bytes())
		return
	}
}

// listingTries is how often one listing is read before its 404 is sent.
const listingTries = 50

// bufferedResponse holds an answer until it is known to be the one to send.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(code int)        { b.code = code }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

// storeDown answers a request the account store could not authenticate:
// 503, which restic retries and instance-sync reports as a server problem
// (a 401 would tell the player their password is wrong).
func (h *publicHandler) storeDown(w http.ResponseWriter, err error) {
	h.s.log.Printf("account store: %v", err)
	w.Header().Set("Retry-After", "5")
	http.Error(w, "503 service unavailable: the account store cannot be reached; try again later", http.StatusServiceUnavailable)
}
