package cloudsvc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSecretFileCreatedOnce: nodes starting together on one data directory
// all end up with the same server key.
func TestSecretFileCreatedOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "server.key")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := loadOrCreateSecretFile(p, newServerKey)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[v] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 1 {
		t.Fatalf("%d different keys handed out", len(seen))
	}
}

// TestTwoNodes: two cloud-svc nodes on one PostgreSQL and one data
// directory act as one server: an account made on one works on the other,
// a push through one is listed by the other, a rotation or a disable on one
// holds on the other within its account cache's second, admin calls for one user wait for each other
// across nodes, and only one node runs retention at a time.
func TestTwoNodes(t *testing.T) {
	pg := withPostgres(t)
	data := filepath.Join(t.TempDir(), "data")
	grace := func(c *Config) { pg(c); c.RotationGrace = 300 * time.Millisecond }
	a := startServer(t, data, func(c *Config) { grace(c); c.NodeName = "node-a" })
	b := startServer(t, data, func(c *Config) { grace(c); c.NodeName = "node-b" })

	p := a.createAccount("alice")
	src := t.TempDir()
	writeTree(t, src, map[string]string{"saves/w/level.dat": "level one"})
	b.mustClient(p, "inst1", "init")
	a.mustClient(p, "inst1", "backup", "--host", "desk", "--tag", "isync:v1,kind:push,label:Survival", src)
	code, body := b.publicGet(p, "/alice/")
	if code != http.StatusOK || !strings.Contains(string(body), `"label":"Survival"`) {
		t.Fatalf("listing through node b: %d %s", code, body)
	}

	// Rotation on b: the old token stops working on a at once, the new one
	// reads the snapshots through a.
	code, m, raw := b.adminDo("POST", "/accounts/alice/rotate", "")
	if code != http.StatusOK {
		t.Fatalf("rotate: %d %s", code, raw)
	}
	// Node a may answer from its copy of the account for AccountCacheTTL.
	eventually(t, "old token refused on node a after rotation", func() bool {
		code, _ := a.publicGet(p, "/alice/inst1/config")
		return code == http.StatusUnauthorized
	})
	_, newPw, _ := strings.Cut(m["token"].(string), ":")
	p2 := player{user: "alice", password: newPw}
	if out := a.mustClient(p2, "inst1", "snapshots", "--json", "--no-lock"); !strings.Contains(out, "label:Survival") {
		t.Errorf("new token through node a:\n%s", out)
	}

	// Disable on a is refused on b's next request.
	if code, _, raw := a.adminDo("POST", "/accounts/alice/disable", ""); code != http.StatusOK {
		t.Fatalf("disable: %d %s", code, raw)
	}
	eventually(t, "disabled account refused on node b", func() bool {
		code, _ := b.publicGet(p2, "/alice/inst1/config")
		return code == http.StatusUnauthorized
	})

	// An admin call for alice waits while another node holds her lock.
	userLock, err := a.svc.store.Lock(context.Background(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	// Released on every way out: a store does not close while a lock's
	// connection is out.
	held := sync.OnceFunc(userLock)
	t.Cleanup(held)
	enabled := make(chan int, 1)
	go func() {
		code, _, _ := b.adminDo("POST", "/accounts/alice/enable", "")
		enabled <- code
	}()
	select {
	case code := <-enabled:
		t.Fatalf("enable on node b did not wait for the lock held on node a (%d)", code)
	case <-time.After(500 * time.Millisecond):
	}
	held()
	if code := <-enabled; code != http.StatusOK {
		t.Fatalf("enable after the lock was released: %d", code)
	}

	// Scheduled retention skips while another node runs it; on-demand
	// retention waits for it and then runs.
	retLock, ok, err := a.svc.store.TryLock(context.Background(), retentionLock)
	if err != nil || !ok {
		t.Fatalf("retention lock: %v %v", ok, err)
	}
	held = sync.OnceFunc(retLock)
	t.Cleanup(held)
	rep, err := b.svc.runRetention(context.Background(), false)
	if err != nil || len(rep.Repositories) != 0 {
		t.Errorf("scheduled retention ran although node a holds the lock: %+v %v", rep, err)
	}
	done := make(chan RetentionReport, 1)
	go func() {
		rep, err := b.svc.RunRetention(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	select {
	case <-done:
		t.Fatal("on-demand retention did not wait for the other node's run")
	case <-time.After(500 * time.Millisecond):
	}
	held()
	if rep := <-done; len(rep.Repositories) != 1 || rep.Errors != 0 {
		t.Errorf("retention after the other run: %+v", rep)
	}

	// Each node labels its own metrics.
	for _, n := range []*testServer{a, b} {
		req, _ := http.NewRequest("GET", n.admin+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+n.svc.AdminToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := `node="` + n.svc.cfg.NodeName + `"`; !strings.Contains(string(raw), want) {
			t.Errorf("metrics of %s lack %s", n.svc.cfg.NodeName, want)
		}
	}

	// Both nodes count usage in one place.
	var sa, sb Storage
	_, ra := a.publicGet(p2, "/alice/.storage")
	_, rb := b.publicGet(p2, "/alice/.storage")
	json.Unmarshal(ra, &sa)
	json.Unmarshal(rb, &sb)
	if sa.Used == 0 || sa != sb {
		t.Errorf("usage differs between nodes: %s vs %s", ra, rb)
	}
}

// eventually polls cond until it holds (a node's account copy lives a
// second; a rotation first re-keys every repository with restic, seconds
// each on a loaded machine). The bound only ends a test whose cond never
// comes true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	const bound = 2 * time.Minute
	for deadline := time.Now().Add(bound); !cond(); {
		if time.Now().After(deadline) {
			t.Errorf("%s: not within %s", what, bound)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRotationGraceAcrossNodes: with a shared store, a repository another
// node creates with the old password just after the switch (a request it
// authenticated before) is re-keyed too, because rotation waits the grace
// period before its re-scan.
func TestRotationGraceAcrossNodes(t *testing.T) {
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), func(c *Config) {
		withPostgres(t)(c)
		c.RotationGrace = 6 * time.Second
		c.AccountCacheTTL = -1
	})
	p := ts.createAccount("ivy")
	ts.mustClient(p, "old", "init")
	// What the other node's in-flight request creates: a repository made
	// with the old password. It is made now, beside the data folder, and
	// moved into the shared storage in one rename once the switch is
	// seen: a restic init there would take seconds on a loaded machine,
	// and could end after the grace period it is meant to fall in.
	late := filepath.Join(filepath.Dir(ts.data), "late")
	if out, err := ts.localRepo(p.password, late, "init"); err != nil {
		t.Fatalf("init with the old password: %v\n%s", err, out)
	}
	type result struct {
		tok TokenResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := ts.svc.Rotate(context.Background(), "ivy")
		done <- result{tok, err}
	}()
	eventually(t, "the switch", func() bool {
		code, _ := ts.publicGet(p, "/ivy/old/config")
		return code == http.StatusUnauthorized
	})
	if err := os.Rename(late, filepath.Join(ts.data, "repos", "ivy", "late")); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	_, newPw, _ := strings.Cut(res.tok.Token, ":")
	if out, err := ts.local(newPw, "ivy", "late", "snapshots", "--no-lock"); err != nil {
		t.Errorf("the repository created during the grace period does not open with the new token: %v\n%s", err, out)
	}
}

// TestStoreDownIs503: when the account store cannot be reached, players get
// 503 (restic retries it; instance-sync reports a server problem), not 401,
// which would tell them their password is wrong.
func TestStoreDownIs503(t *testing.T) {
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), func(c *Config) {
		withPostgres(t)(c)
		c.AccountCacheTTL = -1
	})
	p := ts.createAccount("una")
	if code, _ := ts.publicGet(p, "/una/x/config"); code != http.StatusNotFound {
		t.Fatalf("before: %d", code)
	}
	// The database goes away (its pool closed under the service).
	ts.svc.accounts.Store.(*pgStore).pool.Close()
	if code, body := ts.publicGet(p, "/una/x/config"); code != http.StatusServiceUnavailable {
		t.Errorf("store down: %d %s, want 503", code, body)
	}
}

// TestOneRetentionScheduler: of two nodes with a retention schedule, one
// runs it; when that node stops, the other takes over.
func TestOneRetentionScheduler(t *testing.T) {
	pg := withPostgres(t)
	data := filepath.Join(t.TempDir(), "data")
	every := func(name string) func(*Config) {
		return func(c *Config) { pg(c); c.NodeName = name; c.RetentionInterval = 200 * time.Millisecond }
	}
	a := startServer(t, data, every("a"))
	b := startServer(t, data, every("b"))
	runs := func(n *testServer) float64 {
		return retentionRunsOK(n.svc)
	}
	eventually(t, "a first retention run", func() bool { return runs(a)+runs(b) >= 3 })
	if runs(a) > 0 && runs(b) > 0 {
		t.Fatalf("both nodes ran the schedule: a %v, b %v", runs(a), runs(b))
	}
	leader, other := a, b
	if runs(b) > 0 {
		leader, other = b, a
	}
	leader.stop()
	eventually(t, "the other node takes the schedule over", func() bool { return runs(other) >= 2 })
}

// retentionRunsOK reads cloudsvc_retention_runs_total{result="ok"}.
func retentionRunsOK(s *Service) float64 {
	families, err := s.metrics.reg.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() != "cloudsvc_retention_runs_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
