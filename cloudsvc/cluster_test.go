package cloudsvc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testpg"
	"git.timemachine.center/timemachine/instance-sync/internal/testport"
)

// The load and failure test: a real PostgreSQL, two cloud-svc processes on
// one data directory, HAProxy in front, players running the real
// instance-sync binary (pull, change, push, on two computers in turn) and
// raw no-op snapshot listings, one node SIGKILLed and restarted mid-run.
// The same workload runs against a single cloud-svc and against the plain
// upstream rest-server handler with htpasswd auth, the baseline.
//
// Bounded: loopback only, ISYNC_LOAD_PHASE per phase (default 10s; `make
// load` runs longer), ISYNC_LOAD_PLAYERS players (default 4) and
// ISYNC_LOAD_LISTERS listing loops (default 2). ISYNC_LOAD_REPORT=FILE
// appends the figures as a Markdown table.

func loadEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func needHAProxy(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("haproxy not found: apt-get install haproxy (required under CI=true)")
	}
	t.Skip("haproxy not found: apt-get install haproxy to run the cluster load test")
	return ""
}

// goBuild builds a package of this module (no race detector: the figures
// are the real binaries').
func goBuild(t *testing.T, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = testenv.ModuleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// freeAddr is an address on 127.0.0.1 for a server the test starts, kept
// from every other listener until the test ends (also while the test has
// the server stopped): a port found free and closed could be given to
// another test's server before ours binds it, or while ours is down.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, held, err := testport.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	return addr
}

// proc is a server process the test starts, kills and restarts.
type proc struct {
	t    *testing.T
	name string
	bin  string
	args []string
	env  []string
	log  *syncBuffer
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, bin: bin, args: args, env: env, log: &syncBuffer{}}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(cleanEnv(), p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// kill is SIGKILL: no shutdown, no deferred clean-up, as a machine loss.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func waitHealthy(t *testing.T, url string, p *proc) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy at %s: %v\n%s", p.name, url, err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadTarget is one deployment under test.
type loadTarget struct {
	name    string
	url     string // what players and listings use
	repos   string // the repositories on disk
	restic  string
	account func(user string) (password string)
	// nodeLoss, when set, kills a node and starts it again during the
	// second phase.
	nodeLoss func()
}

type pushRecord struct {
	short  string
	digest string
}

// simPlayer is one player with two computers (folders) of one instance.
type simPlayer struct {
	user, password string
	tokenFile      string
	dirs           [2]string
	instance       string
	mu             sync.Mutex
	pushes         []pushRecord    // reported success
	digests        map[string]bool // every state a push was attempted with
}

// loadStats are what one phase measured.
type loadStats struct {
	mu           sync.Mutex
	cycles       int // pull + change + push, both reported success
	failedSyncs  int
	listings     int
	listFailures int
	latencies    []time.Duration
	start, end   time.Time
}

func (s *loadStats) perMinute() float64 { return float64(s.cycles) / s.end.Sub(s.start).Minutes() }

func (s *loadStats) syncs() string {
	if s.cycles == 0 && s.failedSyncs == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", s.perMinute())
}
func (s *loadStats) perSecond() float64 { return float64(s.listings) / s.end.Sub(s.start).Seconds() }
func (s *loadStats) pct(p float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	l := append([]time.Duration(nil), s.latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

var pushedRE = regexp.MustCompile(`pushed snapshot ([0-9a-f]{8})`)

type loadRun struct {
	t        *testing.T
	isync    string
	restic   string
	tgt      *loadTarget
	players  []*simPlayer
	cross    atomic.Int64 // cross-player requests made (all must be refused)
	violated atomic.Int64
}

func (r *loadRun) isyncRun(ctx context.Context, args ...string) (string, int) {
	cmd := exec.CommandContext(ctx, r.isync, isyncArgs(r.restic, args...)...)
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "INST_") && !strings.HasPrefix(kv, "INSTANCE_SYNC_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "INSTANCE_SYNC_WATCH=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		return out.String() + err.Error(), -1
	}
	return out.String(), 0
}

// writeState gives computer dir a new state of the player's instance: every
// file names the player, so data of another player would show.
func (p *simPlayer) writeState(t *testing.T, dir string, n int) string {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	region := make([]byte, 24<<10)
	rand.Read(region)
	writeTree(t, dir, map[string]string{
		"saves/World/level.dat":        fmt.Sprintf("owner=%s cycle=%d nonce=%x\n", p.user, n, nonce),
		"saves/World/region/r.0.0.mca": "owner=" + p.user + "\n" + string(region),
		"options.txt":                  "owner=" + p.user + "\nfov:90\n",
	})
	return treeDigest(t, dir)
}

// checkOwn verifies that computer dir holds one of the player's own states.
func (r *loadRun) checkOwn(p *simPlayer, dir string) {
	for _, f := range []string{"saves/World/level.dat", "saves/World/region/r.0.0.mca", "options.txt"} {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil || !bytes.HasPrefix(data, []byte("owner="+p.user+"\n")) && !bytes.HasPrefix(data, []byte("owner="+p.user+" ")) {
			r.violated.Add(1)
			r.t.Errorf("%s: %s after a pull is not the player's own (%v): %.40q", p.user, f, err, data)
		}
	}
	d := treeDigest(r.t, dir)
	p.mu.Lock()
	known := p.digests[d]
	p.mu.Unlock()
	if !known {
		r.violated.Add(1)
		r.t.Errorf("%s: a pull restored a state this player never pushed", p.user)
	}
}

func (r *loadRun) setup(n int) {
	t := r.t
	var wg sync.WaitGroup
	r.players = make([]*simPlayer, n)
	for i := range r.players {
		user := fmt.Sprintf("%s-p%02d", r.tgt.name, i)
		p := &simPlayer{user: user, password: r.tgt.account(user), digests: map[string]bool{}}
		p.tokenFile = filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(p.tokenFile, []byte(user+":"+p.password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.dirs = [2]string{t.TempDir(), t.TempDir()}
		r.players[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			p.digests[p.writeState(t, p.dirs[0], 0)] = true
			steps := [][]string{
				{"init", "--url=" + r.tgt.url, "--token-file=" + p.tokenFile, "--pack-folder=" + p.dirs[0]},
				{"push", "--pack-folder=" + p.dirs[0]},
			}
			for _, s := range steps {
				if out, code := r.isyncRun(ctx, s...); code != 0 {
					t.Errorf("%s: %s: exit %d\n%s", user, s[0], code, out)
					return
				}
			}
			var cfg struct {
				InstanceID string `json:"instance_id"`
			}
			data, _ := os.ReadFile(filepath.Join(p.dirs[0], ".cloud-sync", "sync.json"))
			json.Unmarshal(data, &cfg)
			p.instance = cfg.InstanceID
			for _, s := range [][]string{
				{"init", "--url=" + r.tgt.url, "--token-file=" + p.tokenFile, "--pack-folder=" + p.dirs[1], "--join=" + p.instance},
				{"pull", "--pack-folder=" + p.dirs[1], "--offline=fail"},
			} {
				if out, code := r.isyncRun(ctx, s...); code != 0 {
					t.Errorf("%s: %s: exit %d\n%s", user, s[0], code, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// cycle is one sync on one computer: pull (retried while the server is
// unreachable, so the computer never forks), check it holds the player's
// own data, change it, push.
func (r *loadRun) cycle(ctx context.Context, p *simPlayer, comp, n int, st func() *loadStats) {
	dir := p.dirs[comp]
	pulled := false
	for attempt := 0; attempt < 20 && ctx.Err() == nil; attempt++ {
		out, code := r.isyncRun(ctx, "pull", "--pack-folder="+dir, "--offline=fail")
		if code == 0 {
			pulled = true
			break
		}
		if code == 3 {
			// A push reported failed may still have stored its snapshot
			// (the node died before answering): the two computers then
			// diverge. The cloud's side is the player's own data too.
			out, code = r.isyncRun(ctx, "pull", "--pack-folder="+dir, "--offline=fail", "--prefer=cloud")
			if code == 0 {
				pulled = true
				break
			}
		}
		s := st()
		s.mu.Lock()
		s.failedSyncs++
		s.mu.Unlock()
		if testing.Verbose() {
			r.t.Logf("%s: pull exit %d (retrying): %s", p.user, code, lastLine(out))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !pulled {
		return
	}
	r.checkOwn(p, dir)
	digest := p.writeState(r.t, dir, n)
	p.mu.Lock()
	p.digests[digest] = true
	p.mu.Unlock()
	out, code := r.isyncRun(ctx, "push", "--pack-folder="+dir)
	m := pushedRE.FindStringSubmatch(out)
	s := st()
	s.mu.Lock()
	defer s.mu.Unlock()
	if code != 0 || m == nil {
		s.failedSyncs++
		if testing.Verbose() {
			r.t.Logf("%s: push exit %d: %s", p.user, code, lastLine(out))
		}
		return
	}
	p.mu.Lock()
	p.pushes = append(p.pushes, pushRecord{short: m[1], digest: digest})
	p.mu.Unlock()
	s.cycles++
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// lister does raw no-op listings (what a pull asks first) as fast as it
// can, and first and then now and then asks for another player's
// repository with its own credentials, which must be refused (first: a
// loaded machine may leave time for few listings).
func (r *loadRun) lister(ctx context.Context, id int, st func() *loadStats) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	for n := 0; ctx.Err() == nil; n++ {
		p := r.players[(id+n)%len(r.players)]
		target := p
		if n%50 == 0 && len(r.players) > 1 {
			target = r.players[(id+n+1)%len(r.players)]
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", r.tgt.url+"/"+target.user+"/"+target.instance+"/snapshots/", nil)
		req.Header.Set("Accept", "application/vnd.x.restic.rest.v2")
		req.SetBasicAuth(p.user, p.password)
		t0 := time.Now()
		resp, err := client.Do(req)
		var code int
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		d := time.Since(t0)
		if ctx.Err() != nil {
			return
		}
		if target != p {
			r.cross.Add(1)
			if code == http.StatusOK {
				r.violated.Add(1)
				r.t.Errorf("%s listed %s's snapshots", p.user, target.user)
			}
			continue
		}
		s := st()
		s.mu.Lock()
		if code == http.StatusOK {
			s.listings++
			s.latencies = append(s.latencies, d)
		} else {
			s.listFailures++
			if testing.Verbose() {
				r.t.Logf("%s: listing: %d %v", p.user, code, err)
			}
		}
		s.mu.Unlock()
	}
}

// run drives the workload for the given phases; in the phase named "node
// loss" the target loses a node a quarter in and gets it back at half.
func (r *loadRun) run(phase time.Duration, phases []string, listers int) map[string]*loadStats {
	stats := map[string]*loadStats{}
	var cur atomic.Pointer[loadStats]
	// Listings stop at once; syncs finish the cycle they are in (a killed
	// instance-sync would leave restic's lock behind), counted nowhere.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	syncCtx, syncCancel := context.WithTimeout(context.Background(), time.Duration(len(phases))*phase+5*time.Minute)
	defer syncCancel()
	var stopping atomic.Bool
	st := func() *loadStats { return cur.Load() }
	first := &loadStats{start: time.Now()}
	stats[phases[0]] = first
	cur.Store(first)
	var wg sync.WaitGroup
	// In the phase "listings only" the players do not sync yet: the data
	// plane's own cost, without instance-sync and restic on the CPU.
	startSyncs := make(chan struct{})
	if phases[0] != "listings only" {
		close(startSyncs)
	}
	for i, p := range r.players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-startSyncs:
			case <-ctx.Done():
				return
			}
			for n := 1; !stopping.Load() && syncCtx.Err() == nil; n++ {
				r.cycle(syncCtx, p, (n+i)%2, n, st)
			}
		}()
	}
	for i := range listers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.lister(ctx, i, st)
		}()
	}
	for i, name := range phases {
		s := stats[name]
		if s == nil {
			s = &loadStats{start: time.Now()}
			stats[name] = s
			cur.Store(s)
		}
		if name == "node loss" && r.tgt.nodeLoss != nil {
			time.Sleep(phase / 4)
			r.tgt.nodeLoss()
			time.Sleep(time.Until(s.start.Add(phase)))
		} else {
			time.Sleep(phase)
		}
		s.end = time.Now()
		if i+1 < len(phases) {
			next := &loadStats{start: s.end}
			stats[phases[i+1]] = next
			cur.Store(next)
			if name == "listings only" {
				close(startSyncs)
			}
		}
	}
	cur.Store(&loadStats{start: time.Now()}) // the drain
	stopping.Store(true)
	cancel()
	wg.Wait()
	return stats
}

// verify: every push that reported success is in its repository and every
// repository passes restic check.
func (r *loadRun) verify() {
	t := r.t
	for _, p := range r.players {
		repo := filepath.Join(r.tgt.repos, p.user, p.instance)
		cmd := exec.Command(r.restic, "--repo", repo, "snapshots", "--json", "--no-lock")
		cmd.Env = append(cleanEnv(), "RESTIC_PASSWORD="+p.password, "RESTIC_CACHE_DIR="+filepath.Join(t.TempDir(), "c"))
		out, err := cmd.Output()
		var snaps []snapshot
		if err != nil || jsonPayload(out, &snaps) != nil {
			t.Errorf("%s: snapshots: %v", p.user, err)
			continue
		}
		ids := map[string]bool{}
		for _, s := range snaps {
			ids[s.ID[:8]] = true
		}
		for _, push := range p.pushes {
			if !ids[push.short] {
				t.Errorf("%s: push %s reported success but is not in the repository", p.user, push.short)
			}
		}
		cmd = exec.Command(r.restic, "--repo", repo, "check")
		cmd.Env = append(cleanEnv(), "RESTIC_PASSWORD="+p.password, "RESTIC_CACHE_DIR="+filepath.Join(t.TempDir(), "c"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: restic check: %v\n%s", p.user, err, out)
		}
	}
}

type loadRow struct {
	target, phase string
	s             *loadStats
}

func TestClusterLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	haproxy := needHAProxy(t)
	pg := testpg.Shared(t)
	restic := testRestic(t)
	phase := 10 * time.Second
	if v, err := time.ParseDuration(os.Getenv("ISYNC_LOAD_PHASE")); err == nil && v > 0 {
		phase = v
	}
	nPlayers := loadEnvInt("ISYNC_LOAD_PLAYERS", 4)
	nListers := loadEnvInt("ISYNC_LOAD_LISTERS", 2)

	isync := goBuild(t, "./cmd/instance-sync", "instance-sync")
	cloudsvc := goBuild(t, "./cmd/cloud-svc", "cloud-svc")
	plain := goBuild(t, "./internal/cmd/plain-rest-server", "plain-rest-server")

	var rows []loadRow
	runTarget := func(tgt *loadTarget, phases ...string) {
		r := &loadRun{t: t, isync: isync, restic: restic, tgt: tgt}
		r.setup(nPlayers)
		stats := r.run(phase, phases, nListers)
		for _, ph := range phases {
			rows = append(rows, loadRow{tgt.name, ph, stats[ph]})
		}
		r.verify()
		if r.cross.Load() == 0 {
			t.Errorf("%s: no cross-player request was tried", tgt.name)
		}
		for _, p := range r.players {
			if len(p.pushes) == 0 {
				t.Errorf("%s: %s never synced", tgt.name, p.user)
			}
		}
	}

	// Baseline: the upstream handler with htpasswd auth.
	{
		dir := t.TempDir()
		htpasswd := filepath.Join(dir, "htpasswd")
		users := map[string]string{}
		var lines []string
		for i := range nPlayers {
			user := fmt.Sprintf("rest-p%02d", i)
			pw := hex.EncodeToString(randBytes(12))
			h, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
			users[user] = pw
			lines = append(lines, user+":"+string(h))
		}
		os.WriteFile(htpasswd, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
		addr := freeAddr(t)
		p := startProc(t, "plain-rest-server", nil, plain, "--path", filepath.Join(dir, "repos"), "--listen", addr, "--htpasswd-file", htpasswd)
		waitHealthyTCP(t, addr, p)
		runTarget(&loadTarget{name: "rest", url: "http://" + addr, repos: filepath.Join(dir, "repos"), restic: restic,
			account: func(u string) string { return users[u] }}, "listings only", "steady")
		p.kill()
	}

	adminCreate := func(adminURL, token, user string) string {
		req, _ := http.NewRequest("POST", adminURL+"/accounts", strings.NewReader(`{"user":"`+user+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		tok, _ := m["token"].(string)
		_, pw, ok := strings.Cut(tok, ":")
		if resp.StatusCode != http.StatusCreated || !ok {
			t.Fatalf("create %s: %d %v", user, resp.StatusCode, m)
		}
		return pw
	}
	nodeArgs := func(data, name, pub, adm string, extra ...string) []string {
		return append([]string{"--data", data, "--listen", pub, "--admin-listen", adm, "--node-name", name,
			"--restic-binary", restic, "--retention-interval", "0"}, extra...)
	}

	// One cloud-svc node with its embedded store.
	{
		data := filepath.Join(t.TempDir(), "data")
		pub, adm := freeAddr(t), freeAddr(t)
		p := startProc(t, "cloud-svc", nil, cloudsvc, nodeArgs(data, "single", pub, adm)...)
		waitHealthy(t, "http://"+pub, p)
		token := readToken(t, filepath.Join(data, "admin.token"))
		runTarget(&loadTarget{name: "single", url: "http://" + pub, repos: filepath.Join(data, "repos"), restic: restic,
			account: func(u string) string { return adminCreate("http://"+adm, token, u) }}, "listings only", "steady")
		p.kill()
	}

	// Two nodes, PostgreSQL, HAProxy.
	{
		data := filepath.Join(t.TempDir(), "data")
		dsn := pg.NewDatabase(t)
		env := []string{"PGPASSWORD=" + pg.Password, "CLOUD_SVC_SERVER_KEY=" + hex.EncodeToString(randBytes(32))}
		pubA, admA, pubB, admB := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
		a := startProc(t, "node a", env, cloudsvc, nodeArgs(data, "a", pubA, admA, "--store", dsn)...)
		waitHealthy(t, "http://"+pubA, a)
		b := startProc(t, "node b", env, cloudsvc, nodeArgs(data, "b", pubB, admB, "--store", dsn)...)
		waitHealthy(t, "http://"+pubB, b)
		front := freeAddr(t)
		cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
		os.WriteFile(cfg, []byte(haproxyConfig(front, pubA, pubB)), 0o600)
		lb := startProc(t, "haproxy", nil, haproxy, "-db", "-f", cfg)
		waitHealthy(t, "http://"+front, lb)
		token := readToken(t, filepath.Join(data, "admin.token"))
		runTarget(&loadTarget{name: "cluster", url: "http://" + front, repos: filepath.Join(data, "repos"), restic: restic,
			account: func(u string) string { return adminCreate("http://"+admA, token, u) },
			nodeLoss: func() {
				t.Logf("SIGKILL node b")
				b.kill()
				time.Sleep(phase / 4)
				b.start()
				waitHealthy(t, "http://"+pubB, b)
				t.Logf("node b back")
			}}, "listings only", "steady", "node loss")
	}

	var report strings.Builder
	fmt.Fprintf(&report, "| target | phase | syncs/min | failed syncs | listings/s | listing p50 | listing p99 | failed listings |\n|---|---|---|---|---|---|---|---|\n")
	for _, row := range rows {
		s := row.s
		fmt.Fprintf(&report, "| %s | %s | %s | %d | %.0f | %s | %s | %d |\n", row.target, row.phase, s.syncs(), s.failedSyncs,
			s.perSecond(), s.pct(0.5).Round(10*time.Microsecond), s.pct(0.99).Round(10*time.Microsecond), s.listFailures)
	}
	t.Logf("%d players, %d listing loops, %s per phase\n%s", nPlayers, nListers, phase, report.String())
	if f := os.Getenv("ISYNC_LOAD_REPORT"); f != "" {
		out, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(out, "%d players, %d listing loops, %s per phase:\n\n%s\n", nPlayers, nListers, phase, report.String())
			out.Close()
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// waitHealthyTCP waits for a server without /healthz to accept connections.
func waitHealthyTCP(t *testing.T, addr string, p *proc) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s:\n%s", p.name, addr, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// haproxyConfig is the two-node front the README's operator guide shows,
// without TLS (loopback) and with fast health checks for the test.
func haproxyConfig(front, a, b string) string {
	return `global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend players
    bind ` + front + `
    default_backend cloudsvc

backend cloudsvc
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    server a ` + a + ` check
    server b ` + b + ` check
`
}
