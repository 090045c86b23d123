package cloudsvc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const instA = "01JTESTINSTANCEAAAAAAAAAAA"

func TestEndToEnd(t *testing.T) {
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), nil)
	alice := ts.createAccount("alice")
	bob := ts.createAccount("123456789012345678") // a Discord id

	// Alice pushes and restores into a second folder.
	src := t.TempDir()
	writeTree(t, src, map[string]string{"saves/w1/level.dat": "level", "options.txt": "fov:90\n"})
	ts.mustClient(alice, instA, "init")
	ts.mustClient(alice, instA, "backup", "--json", "--host", "alice-pc", "--tag", "isync:v1,kind:push,label:Survival", src)
	dst := t.TempDir()
	ts.mustClient(alice, instA, "restore", "latest", "--target", dst)
	for name, want := range map[string]string{"saves/w1/level.dat": "level", "options.txt": "fov:90\n"} {
		got, err := os.ReadFile(filepath.Join(dst, src, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("restored %s = %q, %v; want %q", name, got, err, want)
		}
	}

	// Bob has his own instance.
	ts.mustClient(bob, "bobinst", "init")
	ts.mustClient(bob, "bobinst", "backup", src)

	t.Run("instance listing", func(t *testing.T) {
		code, raw := ts.publicGet(alice, "/alice/")
		if code != http.StatusOK {
			t.Fatalf("GET /alice/ = %d %s", code, raw)
		}
		var list []Instance
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		if len(list) != 1 || list[0].ID != instA || list[0].Label != "Survival" || list[0].Host != "alice-pc" || list[0].Size == 0 || list[0].LastPush == nil {
			t.Fatalf("GET /alice/ = %s", raw)
		}
		if strings.Contains(string(raw), "bobinst") {
			t.Fatalf("alice's listing leaks bob's instance: %s", raw)
		}
	})

	t.Run("players are isolated", func(t *testing.T) {
		for _, path := range []string{"/" + bob.user + "/", "/" + bob.user + "/bobinst/config", "/" + bob.user + "/bobinst/snapshots/"} {
			code, raw := ts.publicGet(alice, path)
			if code != http.StatusUnauthorized && code != http.StatusForbidden {
				t.Errorf("alice GET %s = %d %s", path, code, raw)
			}
		}
		// A forged proxy header must not help, with or without credentials.
		for _, withAuth := range []bool{true, false} {
			req, _ := http.NewRequest("GET", ts.pub+"/"+bob.user+"/bobinst/config", nil)
			req.Header.Set(proxyAuthHeader, bob.user)
			if withAuth {
				req.SetBasicAuth(alice.user, alice.password)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("forged header (auth=%v) = %d", withAuth, resp.StatusCode)
			}
		}
		// The second line: even with the internal header set to alice,
		// rest-server's own private-repos check keeps her out of /bob/.
		h, err := ts.svc.PublicHandler()
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/"+bob.user+"/bobinst/config", nil)
		req.Header.Set(proxyAuthHeader, alice.user)
		rec := httptest.NewRecorder()
		h.(*publicHandler).rest.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("rest-server private repos let alice into bob's repository: %d", rec.Code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := ts.client(ctx, alice, bob.user, "bobinst", "snapshots", "--no-lock"); err == nil {
			t.Errorf("alice read bob's repository:\n%s", out)
		}
		code, _ := ts.publicGet(player{}, "/alice/")
		if code != http.StatusUnauthorized {
			t.Errorf("anonymous GET /alice/ = %d", code)
		}
		// A 401 for missing or wrong credentials asks for Basic auth.
		for _, p := range []player{{}, {alice.user, "wrong"}} {
			req, _ := http.NewRequest("GET", ts.pub+"/alice/", nil)
			if p.user != "" {
				req.SetBasicAuth(p.user, p.password)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || got != `Basic realm="cloud-svc"` {
				t.Errorf("GET /alice/ as %q: %d, WWW-Authenticate %q", p.user, resp.StatusCode, got)
			}
		}
		code, _ = ts.publicGet(player{alice.user, "wrong"}, "/alice/")
		if code != http.StatusUnauthorized {
			t.Errorf("wrong password GET /alice/ = %d", code)
		}
	})

	t.Run("append only", func(t *testing.T) {
		out := ts.mustClient(alice, instA, "snapshots", "--json", "--no-lock")
		var snaps []snapshot
		if err := jsonPayload([]byte(out), &snaps); err != nil || len(snaps) != 1 {
			t.Fatalf("snapshots: %v %s", err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// restic 0.18.1 reports a refused removal but still exits 0, so the
		// 403 in its output and the snapshot still being there are the test.
		if out, err := ts.client(ctx, alice, alice.user, instA, "forget", snaps[0].ID); err == nil && !strings.Contains(out, "403") {
			t.Errorf("client forget was not refused on an append-only repository:\n%s", out)
		}
		out = ts.mustClient(alice, instA, "snapshots", "--json", "--no-lock")
		if !strings.Contains(out, snaps[0].ID) {
			t.Errorf("snapshot gone after refused forget: %s", out)
		}
	})

	t.Run("admin API", func(t *testing.T) {
		if code, m, _ := ts.adminDo("GET", "/accounts", "", "not-the-token"); code != http.StatusUnauthorized || m["error"] == "" {
			t.Errorf("wrong admin token: %d %v", code, m)
		}
		if code, _, _ := ts.adminDo("GET", "/accounts", "", ""); code != http.StatusUnauthorized {
			t.Errorf("empty admin token: %d", code)
		}
		for _, body := range []string{`{"user":`, `{"user":"Bad Name"}`, `{"usr":"x"}`, ``, `{"user":"healthz"}`} {
			code, m, raw := ts.adminDo("POST", "/accounts", body)
			if code != http.StatusBadRequest || m["error"] == nil {
				t.Errorf("POST /accounts %q = %d %s", body, code, raw)
			}
		}
		if code, _, raw := ts.adminDo("POST", "/accounts", `{"user":"alice"}`); code != http.StatusConflict {
			t.Errorf("duplicate = %d %s", code, raw)
		}
		if code, _, raw := ts.adminDo("POST", "/accounts/nobody/rotate", ""); code != http.StatusNotFound {
			t.Errorf("rotate unknown = %d %s", code, raw)
		}
		if code, _, raw := ts.adminDo("DELETE", "/accounts/alice?purge=maybe", ""); code != http.StatusBadRequest {
			t.Errorf("purge=maybe = %d %s", code, raw)
		}
		code, _, raw := ts.adminDo("GET", "/accounts", "")
		var list []AccountInfo
		if code != http.StatusOK || json.Unmarshal(raw, &list) != nil || len(list) != 2 {
			t.Fatalf("GET /accounts = %d %s", code, raw)
		}
		for _, a := range list {
			if a.Instances != 1 || a.Bytes == 0 || a.LastPush == nil {
				t.Errorf("account entry %+v", a)
			}
		}
		// The admin API is not on the public port, not even for a player.
		for _, p := range []player{{}, alice} {
			req, _ := http.NewRequest("POST", ts.pub+"/accounts", strings.NewReader(`{"user":"mallory"}`))
			req.Header.Set("Authorization", "Bearer "+ts.svc.AdminToken())
			if p.user != "" {
				req.SetBasicAuth(p.user, p.password)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("admin API answered on the public port: %d", resp.StatusCode)
			}
		}
		if code, _, _ := ts.adminDo("GET", "/accounts/mallory", ""); code == http.StatusOK {
			t.Errorf("mallory exists")
		}
	})

	t.Run("healthz and metrics", func(t *testing.T) {
		if code, _ := ts.publicGet(player{}, "/healthz"); code != http.StatusOK {
			t.Errorf("healthz = %d", code)
		}
		if code, _ := ts.publicGet(alice, "/metrics"); code != http.StatusForbidden {
			t.Errorf("alice /metrics = %d", code)
		}
		m := ts.createAccount("metrics")
		code, raw := ts.publicGet(m, "/metrics")
		if code != http.StatusOK || !strings.Contains(string(raw), "cloudsvc_auth_total") || !strings.Contains(string(raw), "rest_server_blob_write_total") {
			t.Errorf("metrics = %d, missing counters", code)
		}
		if code, _, raw := ts.adminDo("GET", "/metrics", ""); code != http.StatusOK || !strings.Contains(string(raw), "cloudsvc_admin_requests_total") {
			t.Errorf("admin metrics = %d", code)
		}
	})

	t.Run("delete keeps data unless purge", func(t *testing.T) {
		code, m, raw := ts.adminDo("DELETE", "/accounts/"+bob.user, "")
		kept, _ := m["kept_at"].(string)
		if code != http.StatusOK || kept == "" {
			t.Fatalf("delete = %d %s", code, raw)
		}
		if _, err := os.Stat(filepath.Join(kept, "bobinst", "config")); err != nil {
			t.Errorf("kept data: %v", err)
		}
		if code, _ := ts.publicGet(bob, "/"+bob.user+"/"); code != http.StatusUnauthorized {
			t.Errorf("deleted bob = %d", code)
		}
		if code, _, _ := ts.adminDo("DELETE", "/accounts/"+bob.user, ""); code != http.StatusNotFound {
			t.Errorf("second delete = %d", code)
		}
		carol := ts.createAccount("carol")
		ts.mustClient(carol, "c1", "init")
		if code, _, raw := ts.adminDo("DELETE", "/accounts/carol?purge=true", ""); code != http.StatusOK {
			t.Fatalf("purge = %d %s", code, raw)
		}
		if _, err := os.Stat(filepath.Join(ts.data, "repos", "carol")); !os.IsNotExist(err) {
			t.Errorf("purged data still there: %v", err)
		}
	})
}

func TestRotateDisableRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ts := startServer(t, data, nil)
	dave := ts.createAccount("dave")
	src := t.TempDir()
	writeTree(t, src, map[string]string{"saves/w/level.dat": "before rotation"})
	ts.mustClient(dave, "i1", "init")
	ts.mustClient(dave, "i1", "backup", src)
	ts.mustClient(dave, "i2", "init")

	code, m, raw := ts.adminDo("POST", "/accounts/dave/rotate", "")
	if code != http.StatusOK {
		t.Fatalf("rotate = %d %s", code, raw)
	}
	if w, ok := m["warnings"]; ok {
		t.Errorf("rotate warnings: %v", w)
	}
	tok, _ := m["token"].(string)
	u, pw, _ := strings.Cut(tok, ":")
	fresh := player{u, pw}
	if u != "dave" || pw == dave.password {
		t.Fatalf("rotate token %q", tok)
	}

	// Old token: refused over HTTP, and no longer opens the repository.
	if code, _ := ts.publicGet(dave, "/dave/"); code != http.StatusUnauthorized {
		t.Errorf("old token over HTTP = %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := ts.client(ctx, dave, "dave", "i1", "snapshots", "--no-lock"); err == nil {
		t.Errorf("old token still works:\n%s", out)
	}
	for _, inst := range []string{"i1", "i2"} {
		if out, err := ts.local(dave.password, "dave", inst, "snapshots", "--no-lock"); err == nil {
			t.Errorf("old password still opens %s:\n%s", inst, out)
		}
		if out, err := ts.local(fresh.password, "dave", inst, "key", "list", "--json", "--no-lock"); err != nil || strings.Count(out, `"id"`) != 1 {
			t.Errorf("keys of %s after rotation (want exactly one): %v\n%s", inst, err, out)
		}
	}
	// New token reads the old snapshots.
	dst := t.TempDir()
	ts.mustClient(fresh, "i1", "restore", "latest", "--target", dst)
	if got, err := os.ReadFile(filepath.Join(dst, src, "saves/w/level.dat")); err != nil || string(got) != "before rotation" {
		t.Errorf("restore with new token: %q %v", got, err)
	}

	// Disable refuses; enable restores access.
	if code, _, raw := ts.adminDo("POST", "/accounts/dave/disable", ""); code != http.StatusOK {
		t.Fatalf("disable = %d %s", code, raw)
	}
	if code, _ := ts.publicGet(fresh, "/dave/i1/config"); code != http.StatusUnauthorized {
		t.Errorf("disabled account = %d", code)
	}
	if out, err := ts.client(ctx, fresh, "dave", "i1", "snapshots", "--no-lock"); err == nil {
		t.Errorf("disabled account can read:\n%s", out)
	}
	if code, _, _ := ts.adminDo("POST", "/accounts/dave/enable", ""); code != http.StatusOK {
		t.Fatalf("enable = %d", code)
	}

	// Restart: close the store, open it again; accounts survive.
	ts.stop()
	ts2 := startServer(t, data, nil)
	if code, raw := ts2.publicGet(fresh, "/dave/"); code != http.StatusOK || !strings.Contains(string(raw), `"i1"`) {
		t.Errorf("after restart GET /dave/ = %d %s", code, raw)
	}
	if ts2.svc.AdminToken() != ts.svc.AdminToken() {
		t.Errorf("admin token changed across restarts")
	}
	ts2.mustClient(fresh, "i1", "snapshots", "--no-lock")
}

func TestRetentionKeepsHeadsAndYoungSafety(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ts := startServer(t, data, func(c *Config) { c.Policy = Policy{KeepLast: 1} })
	eve := ts.createAccount("eve")
	ts.mustClient(eve, "r1", "init")
	src := t.TempDir()

	now := time.Now()
	backup := func(age time.Duration, content string, tags ...string) string {
		t.Helper()
		writeTree(t, src, map[string]string{"saves/w/level.dat": content})
		args := []string{"backup", "--json", "--host", "pc", "--time", now.Add(-age).Format("2006-01-02 15:04:05"), "--tag", strings.Join(tags, ",")}
		out, err := ts.local(eve.password, "eve", "r1", append(args, src)...)
		if err != nil {
			t.Fatalf("local backup: %v\n%s", err, out)
		}
		return snapshotIDFromBackup(t, out)
	}
	day := 24 * time.Hour
	oldSafety := backup(40*day, "s-old", "isync:v1", "kind:safety")
	p1 := backup(10*day, "p1", "isync:v1", "kind:push")
	p2 := backup(9*day, "p2", "isync:v1", "kind:push", "base:"+p1)
	p3 := backup(8*day, "p3", "isync:v1", "kind:push", "base:"+p2) // head
	p4 := backup(7*day, "p4", "isync:v1", "kind:push", "base:"+p1) // head of a fork
	youngSafety := backup(1*day, "s-young", "isync:v1", "kind:safety", "base:"+p4)

	code, _, raw := ts.adminDo("POST", "/retention", "")
	if code != http.StatusOK {
		t.Fatalf("retention = %d %s", code, raw)
	}
	var rep RetentionReport
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Errors != 0 || rep.Removed != 3 {
		t.Fatalf("retention report: %v %s", err, raw)
	}
	out, err := ts.local(eve.password, "eve", "r1", "snapshots", "--json", "--no-lock")
	if err != nil {
		t.Fatal(err)
	}
	var snaps []snapshot
	if err := jsonPayload([]byte(out), &snaps); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, s := range snaps {
		left[s.ID] = true
	}
	for id, want := range map[string]bool{oldSafety: false, p1: false, p2: false, p3: true, p4: true, youngSafety: true} {
		if left[id] != want {
			t.Errorf("snapshot %s kept=%v, want %v", id[:8], left[id], want)
		}
	}
	if out, err := ts.local(eve.password, "eve", "r1", "check"); err != nil {
		t.Errorf("check after retention: %v\n%s", err, out)
	}
}

func TestProtectedIDs(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	snap := func(id string, age time.Duration, tags ...string) snapshot {
		return snapshot{ID: id, Time: now.Add(-age), Tags: tags}
	}
	day := 24 * time.Hour
	tests := []struct {
		name  string
		snaps []snapshot
		want  []string
	}{
		{"empty", nil, nil},
		{"single push is a head", []snapshot{snap("a", day, "kind:push")}, []string{"a"}},
		{"chain keeps tip", []snapshot{snap("a", 3*day, "kind:push"), snap("b", 2*day, "kind:push", "base:a")}, []string{"b"}},
		{"merge names two bases", []snapshot{
			snap("a", 3*day, "kind:push"), snap("b", 3*day, "kind:push"),
			snap("c", day, "kind:push", "base:a", "base:b"),
		}, []string{"c"}},
		{"safety naming a push does not unmake its head", []snapshot{
			snap("a", 3*day, "kind:push"), snap("s", day, "kind:safety", "base:a"),
		}, []string{"a", "s"}},
		{"old safety unprotected", []snapshot{snap("s", 31*day, "kind:safety")}, nil},
		{"abbreviated base", []snapshot{snap("abcdef12", 2*day, "kind:push"), snap("b", day, "kind:push", "base:abcd")}, []string{"b"}},
		{"untagged snapshots are not heads", []snapshot{snap("x", day)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protectedIDs(tt.snaps, now, 30*day)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for _, id := range tt.want {
				if !got[id] {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}
