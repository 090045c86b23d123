package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

// faultProxy is a reverse proxy in front of the rest-server that counts
// requests and, once armed, fails request N and every one after it (the
// server died mid-transfer): with a 500, by dropping the connection, or by
// never answering.
type faultProxy struct {
	URL   string
	srv   *http.Server
	proxy *httputil.ReverseProxy

	mu      sync.Mutex
	n       int    // requests seen since the last arm
	at      int    // first failing request; 0 = healthy
	mode    string // "500", "drop", "stall"
	kind    string // when set, only reads of this kind's files fail ("index", ...)
	release chan struct{}
}

func startFaultProxy(t *testing.T, backend string) *faultProxy {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{URL: "http://" + ln.Addr().String(), proxy: httputil.NewSingleHostReverseProxy(u), release: make(chan struct{})}
	p.proxy.ErrorLog = nil
	p.srv = &http.Server{Handler: p}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() {
		p.arm("", 0)
		p.srv.Close()
	})
	return p
}

// arm makes request at (counted from now) and every later one fail as
// mode says; at 0 heals the server. It returns how many requests the
// proxy saw since the last arm.
func (p *faultProxy) arm(mode string, at int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := p.n
	close(p.release) // stalled requests end
	p.n, p.at, p.mode, p.kind, p.release = 0, at, mode, "", make(chan struct{})
	return seen
}

// armFiles makes every read of a file of kind (a repository folder:
// "index", "snapshots") fail as mode says, from now on; listings and
// other requests pass.
func (p *faultProxy) armFiles(mode, kind string) {
	p.arm(mode, 1)
	p.mu.Lock()
	p.kind = kind
	p.mu.Unlock()
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.n++
	fail := p.at > 0 && p.n >= p.at
	if p.kind != "" {
		dir, name := path.Split(r.URL.Path)
		fail = fail && name != "" && path.Base(dir) == p.kind
	}
	mode, release := p.mode, p.release
	p.mu.Unlock()
	if !fail {
		p.proxy.ServeHTTP(w, r)
		return
	}
	switch mode {
	case "500":
		http.Error(w, "injected failure", http.StatusInternalServerError)
	case "drop":
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case "stall":
		select {
		case <-release:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler)
	}
}

// TestServerFaults runs pull and push against a server that fails at
// request N (500, dropped connection, no answer), for N spread over a
// whole run, and checks after each: a failed pull warns and exits 0 (the
// game starts) within a bound, leaves the pack folder as it was or as the
// snapshot has it; a failed push loses nothing; once the server is back a
// healthy run syncs (exit 0 and no warning: a pull that gives up exits 0
// too), no restic lock is left on the server, and every computer has the
// same files. When they differ, the failure shows the runs' output, both
// states and the differing file's digest, size and mtime on each side.
//
// ISYNC_SERVER_FAULTS sets how many values of N each mode and operation
// tries (default 1; e.g. 12 for a long sweep).
func TestServerFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("long: fails a real server under real syncs")
	}
	if filepath.Separator != '/' {
		t.Skip("Unix paths")
	}
	realRestic := testenv.Restic(t)
	points := 1
	if v := os.Getenv("ISYNC_SERVER_FAULTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ISYNC_SERVER_FAULTS=%q", v)
		}
		points = n
	}
	bin := buildBinary(t)
	work := t.TempDir()
	srv, token := aliceServer(t, work)
	proxy := startFaultProxy(t, srv.URL)
	// The runs against the failing server give up on a stall after 15 s,
	// shorter than the hooks' 45 s to keep the test quick, and long enough
	// that restic's start (key derivation, index) on a loaded machine is
	// not taken for a stall. The healthy runs keep the hooks' bounds: a
	// healthy pull that gave up would exit 0 too, having changed nothing,
	// and its computer would not have the files the test expects.
	pcA := newComputer(t, bin, realRestic, filepath.Join(work, "homeA"))
	pcB := newComputer(t, bin, realRestic, filepath.Join(work, "homeB"))
	for _, pc := range []*computer{pcA, pcB} {
		pc.env = append(pc.env, "INSTANCE_SYNC_HOSTNAME=pc")
	}
	faultyB := *pcB
	faultyB.env = append(slices.Clone(pcB.env), "INSTANCE_SYNC_RESTIC_STALL=15s")
	// healthy runs a sync against the healed server: it must exit 0 and
	// say it synced, never warn (a pull that warns changed nothing).
	healthy := func(pc *computer, pack, op string) string {
		t.Helper()
		out := pc.must(pack, op)
		if strings.Contains(out, "instance-sync: warning:") {
			t.Fatalf("%s in %s against a healthy server warned:\n%s", op, pack, out)
		}
		return out
	}
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	rng := rand.New(rand.NewPCG(3, 4))
	change := func(pack string, round int) {
		for j := range 3 {
			data := make([]byte, 200<<10+rng.IntN(1000))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			writeTestFile(t, pack, fmt.Sprintf("saves/World/region/r.%d.0.mca", (round*3+j)%8), string(data))
		}
		writeTestFile(t, pack, "saves/World/level.dat", fmt.Sprintf("level round %d in %s", round, filepath.Base(pack)))
	}
	for i := range 8 {
		writeTestFile(t, a, fmt.Sprintf("saves/World/region/r.%d.0.mca", i), strings.Repeat(strconv.Itoa(i), 100<<10))
	}
	pcA.must(a, "init", "--url="+proxy.URL, "--token-file="+token)
	healthy(pcA, a, "push")
	cfg, err := instance.Paths{Pack: a}.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	locks := filepath.Join(srv.DataDir, "alice", cfg.InstanceID, "locks")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	pcB.must(b, "init", "--url="+proxy.URL, "--token-file="+token, "--join="+cfg.InstanceID)
	healthy(pcB, b, "pull")
	sameScope(t, a, b)

	// How many requests a changed pull and a push make, to spread N over.
	change(a, 0)
	healthy(pcA, a, "push")
	proxy.arm("", 0)
	healthy(pcB, b, "pull")
	pullRequests := proxy.arm("", 0)
	change(b, 0)
	healthy(pcB, b, "push")
	pushRequests := proxy.arm("", 0)
	healthy(pcA, a, "pull")
	t.Logf("a changed pull makes %d requests, a push %d", pullRequests, pushRequests)

	const bound = 90 * time.Second // far below restic's own 15 minutes of retries
	round := 1
	noLocks := func(what string) {
		t.Helper()
		entries, _ := os.ReadDir(locks)
		if len(entries) > 0 {
			t.Fatalf("%s: %d restic locks left on the server", what, len(entries))
		}
	}
	// converged fails unless a and b have the same files, saying what
	// differs, what the runs said and what each computer's state holds.
	converged := func(what string, runs ...string) {
		t.Helper()
		d := scopeDiff(t, a, b)
		if d == "" {
			return
		}
		var msg strings.Builder
		fmt.Fprintf(&msg, "%s: %s", what, d)
		for i := 0; i+1 < len(runs); i += 2 {
			fmt.Fprintf(&msg, "\n--- %s:\n%s", runs[i], strings.TrimSpace(runs[i+1]))
		}
		fmt.Fprintf(&msg, "\n--- state of a: %s\n--- state of b: %s", stateSummary(a), stateSummary(b))
		t.Fatal(msg.String())
	}
	for m, mode := range []string{"500", "drop", "stall"} {
		for i := range points {
			idx, total := i*3+m, points*3
			// Pull: a pushed a new version; the server fails at request n
			// of b's pull.
			// From the first snapshot file read to the end of the restore.
			n := 2 + idx*(pullRequests-4)/max(total-1, 1)
			change(a, round)
			pushed := healthy(pcA, a, "push")
			before := digests(t, b)
			proxy.arm(mode, n)
			start := time.Now()
			out, code := faultyB.run(b, "pull")
			took := time.Since(start)
			proxy.arm("", 0)
			what := fmt.Sprintf("pull, %s at request %d of %d", mode, n, pullRequests)
			if code != 0 || !strings.Contains(out, "warning") && !strings.Contains(out, "restored") {
				t.Fatalf("%s: exit %d, want 0 (the game starts)\n%s", what, code, out)
			}
			if took > bound {
				t.Fatalf("%s took %s, more than %s", what, took.Round(time.Second), bound)
			}
			t.Logf("%s: exit %d after %s", what, code, took.Round(100*time.Millisecond))
			if after := digests(t, b); !strings.Contains(out, "restored") && after != before {
				t.Fatalf("%s: the pull failed but changed the pack folder\n%s", what, out)
			}
			again := healthy(pcB, b, "pull")
			converged(what+", then a healthy pull", "a's push", pushed, "b's pull (failed)", out, "b's pull (healthy)", again)
			noLocks(what + ", then a healthy pull")

			// Push: b made progress; the server fails at request n of the
			// push. Whatever the exit code, nothing is lost.
			// From late in the backup (restic holds its lock) to the start.
			n = max(pushRequests-2-idx*(pushRequests-4)/max(total-1, 1), 1)
			change(b, round)
			want := digests(t, b)
			proxy.arm(mode, n)
			start = time.Now()
			out, code = faultyB.run(b, "push")
			took = time.Since(start)
			t.Logf("push, %s at request %d: exit %d after %s", mode, n, code, took.Round(100*time.Millisecond))
			proxy.arm("", 0)
			what = fmt.Sprintf("push, %s at request %d of %d", mode, n, pushRequests)
			if took > bound {
				t.Fatalf("%s took %s, more than %s\n%s", what, took.Round(time.Second), bound, out)
			}
			if digests(t, b) != want {
				t.Fatalf("%s changed the pack folder\n%s", what, out)
			}
			again = healthy(pcB, b, "push")
			noLocks(what + ", then a healthy push")
			pulled := healthy(pcA, a, "pull")
			converged(what+", then a healthy push and pull", "b's push (failed)", out, "b's push (healthy)", again, "a's pull", pulled)
			round++
		}
	}
}

// stateSummary is pack's state.json for a failure message, without the
// snapshot metadata and manifest that make most of it.
func stateSummary(pack string) string {
	data, err := os.ReadFile(instance.Paths{Pack: pack}.State())
	if err != nil {
		return err.Error()
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Sprintf("%v: %.2000s", err, data)
	}
	delete(st, "known")
	delete(st, "manifest")
	out, _ := json.Marshal(st)
	return string(out)
}

// digests is one line per synced file of pack: its path and SHA-256.
func digests(t *testing.T, pack string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(filepath.Join(pack, "saves"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(pack, p)
		lines = append(lines, rel+" "+hash(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestServerStallManyFiles stalls the server while a pull reads many small
// files of the repository a few at a time: the index before a restore, and
// the snapshots this computer has not seen (a long history). The first
// request that times out ends the pull, which must not wait for the other
// files a batch and a timeout at a time (100 index files took 13 × 10 s,
// far past the hooks' 45 s, before the game could start).
func TestServerStallManyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("long: stalls a real server under real syncs")
	}
	if filepath.Separator != '/' {
		t.Skip("Unix paths")
	}
	realRestic := testenv.Restic(t)
	bin := buildBinary(t)
	work := t.TempDir()
	srv, token := aliceServer(t, work)
	proxy := startFaultProxy(t, srv.URL)
	pcA := newComputer(t, bin, realRestic, filepath.Join(work, "homeA"))
	pcB := newComputer(t, bin, realRestic, filepath.Join(work, "homeB"))
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	writeTestFile(t, a, "saves/World/level.dat", "level")
	writeTestFile(t, a, "saves/World/region/r.0.0.mca", strings.Repeat("r", 100<<10))
	pcA.must(a, "init", "--url="+proxy.URL, "--token-file="+token)
	pcA.must(a, "push")
	cfg, err := instance.Paths{Pack: a}.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	pcB.must(b, "init", "--url="+proxy.URL, "--token-file="+token, "--join="+cfg.InstanceID)
	pcB.must(b, "pull")
	repo := filepath.Join(srv.DataDir, "alice", cfg.InstanceID)
	rng := rand.New(rand.NewPCG(5, 6))
	const bound = 90 * time.Second // as TestServerFaults; a fixed pull takes one timeout
	for _, kind := range []string{"index", "snapshots"} {
		writeTestFile(t, a, "saves/World/level.dat", "level, then "+kind)
		pcA.must(a, "push")
		// 100 more files of kind: their names are listed, and reading any
		// of them stalls, so their content is never read.
		var fakes []string
		for range 100 {
			name := filepath.Join(repo, kind, fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()))
			if err := os.WriteFile(name, []byte("never read"), 0o600); err != nil {
				t.Fatal(err)
			}
			fakes = append(fakes, name)
		}
		before := digests(t, b)
		proxy.armFiles("stall", kind)
		start := time.Now()
		out, code := pcB.run(b, "pull")
		took := time.Since(start)
		seen := proxy.arm("", 0)
		for _, f := range fakes {
			os.Remove(f)
		}
		what := "pull, the server stalling on " + kind + " files"
		t.Logf("%s: exit %d after %s, %d requests", what, code, took.Round(100*time.Millisecond), seen)
		if code != 0 || !strings.Contains(out, "instance-sync: warning:") {
			t.Fatalf("%s: exit %d, want 0 and a warning (the game starts)\n%s", what, code, out)
		}
		if digests(t, b) != before {
			t.Fatalf("%s changed the pack folder\n%s", what, out)
		}
		// Before the files: the listings, a snapshot, the key, the lock
		// check. Then at most the 8 that were under way when the first
		// timed out, and never the same files again.
		if seen > 20 {
			t.Fatalf("%s made %d requests: it went on reading after the first request timed out\n%s", what, seen, out)
		}
		if took > bound {
			t.Fatalf("%s took %s, more than %s\n%s", what, took.Round(time.Second), bound, out)
		}
		if out := pcB.must(b, "pull"); strings.Contains(out, "instance-sync: warning:") {
			t.Fatalf("healthy pull after the %s stall warned:\n%s", kind, out)
		}
		sameScope(t, a, b)
	}
}
