package engine

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// twoSynced is two computers synced through a server: a, whose master key
// is cached after one round (as every pull after the first finds it), and
// b, which pushes.
type twoSynced struct {
	srv          *testserver.Server
	cfg          instance.Config
	a, b         string
	optA, optB   Options
	log          *bytes.Buffer
	instanceRepo string // the repository's folder on the server
}

func newTwoSynced(t *testing.T) *twoSynced {
	t.Helper()
	bin := testenv.Restic(t)
	srv, err := testserver.Start(t.TempDir(), "", map[string]string{"alice": "alice-secret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var log bytes.Buffer
	computer := func(host string) (string, Options) {
		pack := t.TempDir()
		return pack, Options{
			PackFolder: pack, ResticBinary: bin, NoDownload: true, Hostname: host,
			UI: ui.NewPlain(&log), Stderr: &log, Getenv: func(string) string { return "" },
			UserDirs: instance.UserDirs{Config: t.TempDir(), Cache: t.TempDir()},
		}
	}
	ctx := context.Background()
	tok := instance.Token{User: "alice", Password: "alice-secret-pw"}
	w := &twoSynced{srv: srv, log: &log}
	w.a, w.optA = computer("a")
	for _, f := range []string{"saves/W/level.dat", "saves/W/region/r.0.0.mca", "saves/W/DIM-1/region/r.0.0.mca", "saves/W/playerdata/p.dat", "options.txt"} {
		w.write(t, w.a, f, "v1 "+f)
	}
	cfg, err := Init(ctx, InitOptions{Options: w.optA, URL: srv.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.instanceRepo = filepath.Join(srv.DataDir, "alice", cfg.InstanceID)
	w.push(t, w.optA)
	w.b, w.optB = computer("b")
	if _, err := Init(ctx, InitOptions{Options: w.optB, URL: srv.URL, Token: tok, Join: cfg.InstanceID}); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ctx, w.optB); err != nil {
		t.Fatalf("pull b: %v\n%s", err, log.String())
	}
	// One round first: a's pull caches the repository's master key (it
	// asks restic once), as every pull after it finds it.
	w.write(t, w.b, "saves/W/DIM-1/region/r.0.0.mca", "v1.5")
	w.push(t, w.optB)
	if _, err := Pull(ctx, w.optA); err != nil {
		t.Fatalf("pull a: %v\n%s", err, log.String())
	}
	return w
}

func (w *twoSynced) write(t *testing.T, pack, rel, data string) {
	t.Helper()
	name := filepath.Join(pack, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w *twoSynced) push(t *testing.T, opt Options) Result {
	t.Helper()
	r, err := Push(context.Background(), opt)
	if err != nil || r.Action != ActionPushed {
		t.Fatalf("push %s: %+v, %v\n%s", opt.Hostname, r, err, w.log.String())
	}
	return r
}

// TestChangedPullRequestsBeforeRestic: through a network every request of
// ours before restic starts is a round trip the player waits for. A
// changed pull reads the new snapshot's file once (its metadata and its
// trees come from the same download), the key list and the lock check
// once, and a snapshot's trees, five levels deep, in one request per data
// file that holds them, not one per level. (Every restore runs restic
// here: a small one is otherwise downloaded without it.)
func TestChangedPullRequestsBeforeRestic(t *testing.T) {
	w := newTwoSynced(t)
	ctx := context.Background()
	cfg, a, optA, log := w.cfg, w.a, w.optA, w.log
	optA.ResticRestore = true
	w.write(t, w.b, "saves/W/DIM-1/region/r.0.0.mca", "v2")
	pushed := w.push(t, w.optB)

	var mu sync.Mutex
	var reqs []string
	w.srv.SetHook(func(_ http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		reqs = append(reqs, r.Method+" "+r.URL.Path)
		mu.Unlock()
		return false
	})
	if r, err := Pull(ctx, optA); err != nil || r.Snapshot != pushed.Snapshot {
		t.Fatalf("pull a: %+v, %v\n%s", r, err, log.String())
	}
	w.srv.SetHook(nil)
	if got, _ := os.ReadFile(filepath.Join(a, "saves", "W", "DIM-1", "region", "r.0.0.mca")); string(got) != "v2" {
		t.Fatalf("the pull did not bring b's change: %q", got)
	}
	// restic's first request is HEAD <repo>/config; ours come before it.
	var ours []string
	for _, r := range reqs {
		if strings.HasPrefix(r, "HEAD ") && strings.HasSuffix(r, "/config") {
			break
		}
		ours = append(ours, r)
	}
	if len(ours) == len(reqs) {
		t.Fatalf("restic never ran:\n%s", strings.Join(reqs, "\n"))
	}
	count := func(pred func(string) bool) int {
		n := 0
		for _, r := range ours {
			if pred(r) {
				n++
			}
		}
		return n
	}
	snapFile := "GET /alice/" + cfg.InstanceID + "/snapshots/" + pushed.Snapshot
	if n := count(func(r string) bool { return r == snapFile }); n != 1 {
		t.Errorf("the new snapshot's file was read %d times before restic, want 1:\n%s", n, strings.Join(ours, "\n"))
	}
	for _, list := range []string{"keys/", "locks/"} {
		if n := count(func(r string) bool { return strings.HasSuffix(r, "/"+list) }); n != 1 {
			t.Errorf("%s was listed %d times before restic, want 1:\n%s", list, n, strings.Join(ours, "\n"))
		}
	}
	// The trees lie in three data files (a's push, b's two): at most one
	// request each, where reading level by level took one per level.
	if n := count(func(r string) bool { return strings.Contains(r, "/data/") }); n > 3 {
		t.Errorf("%d requests for trees before restic, want at most 3 (one per data file):\n%s", n, strings.Join(ours, "\n"))
	}
}

// TestPushStartsResticBeforeTheChecks: an incremental push from a computer
// that synced before starts restic right after the walk; the listing, the
// key list and the lock check are made while restic derives its key (about
// half a second), not before it starts. Every request that reaches the
// server before restic's first one (HEAD config) is held until restic's
// arrives: with the checks first, restic would never come, and the held
// requests are let go after a long wait, and restic's first request comes
// after their answers.
func TestPushStartsResticBeforeTheChecks(t *testing.T) {
	bin := testenv.Restic(t)
	srv, err := testserver.Start(t.TempDir(), "", map[string]string{"alice": "alice-secret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var log bytes.Buffer
	pack := t.TempDir()
	opt := Options{
		PackFolder: pack, ResticBinary: bin, NoDownload: true, Hostname: "a",
		UI: ui.NewPlain(&log), Stderr: &log, Getenv: func(string) string { return "" },
		UserDirs:    instance.UserDirs{Config: t.TempDir(), Cache: t.TempDir()},
		HTTPTimeout: 2 * time.Minute,
	}
	level := filepath.Join(pack, "saves", "W", "level.dat")
	if err := os.MkdirAll(filepath.Dir(level), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, data := range []string{"v1", "v2", "v3"} {
		if err := os.WriteFile(level, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := Init(ctx, InitOptions{Options: opt, URL: srv.URL, Token: instance.Token{User: "alice", Password: "alice-secret-pw"}}); err != nil {
				t.Fatal(err)
			}
		}
		if i < 2 {
			if r, err := Push(ctx, opt); err != nil || r.Action != ActionPushed {
				t.Fatalf("push %d: %+v, %v\n%s", i, r, err, log.String())
			}
		}
	}

	resticCame := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var held []string
	released := 0 // held requests let go by restic's first request
	srv.SetHook(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.UserAgent() != "instance-sync" { // restic's
			once.Do(func() { close(resticCame) })
			return false
		}
		select {
		case <-resticCame:
			return false // after restic's start
		default:
		}
		mu.Lock()
		held = append(held, r.Method+" "+r.URL.Path)
		mu.Unlock()
		select {
		case <-resticCame:
			mu.Lock()
			released++
			mu.Unlock()
		case <-time.After(30 * time.Second):
		}
		return false
	})
	r, err := Push(ctx, opt)
	srv.SetHook(nil)
	if err != nil || r.Action != ActionPushed {
		t.Fatalf("push: %+v, %v\n%s", r, err, log.String())
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case <-resticCame:
	default:
		t.Fatal("restic made no request")
	}
	// (A request of ours sent after restic's first one is not held: it did
	// not make restic wait either.)
	if released != len(held) {
		t.Errorf("restic started only after %d of the push's %d requests before it were answered (it waited for them):\n%s", len(held)-released, len(held), strings.Join(held, "\n"))
	}
}
