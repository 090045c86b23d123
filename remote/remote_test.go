package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/testport"
)

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url      string
		insecure bool
		want     string // "" = accepted
	}{
		{"https://cloud.example.org", false, ""},
		{"http://127.0.0.1:8000", false, ""},
		{"http://localhost:8000", false, ""},
		{"http://[::1]:8000", false, ""},
		{"http://cloud.example.org", false, "https is required"},
		{"http://192.168.1.10:8000", false, "https is required"},
		{"http://cloud.example.org", true, ""},
		{"https://user:pw@cloud.example.org", false, "must not contain credentials"},
		{"ftp://cloud.example.org", false, "not a server URL"},
		{"cloud.example.org", false, "not a server URL"},
	} {
		_, err := CheckURL(tt.url, tt.insecure)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckURL(%q) = %v", tt.url, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckURL(%q) = %v, want %q", tt.url, err, tt.want)
		}
	}
}

// TestStatusMapping checks how HTTP answers become errors: the listing of
// a missing repository is not an error, 401 is ErrAuth, 5xx is ErrServer
// and a server that does not answer in time is ErrUnreachable.
func TestStatusMapping(t *testing.T) {
	code := http.StatusOK
	body := `[{"name":"` + strings.Repeat("a", 64) + `","size":300},{"name":"junk","size":1}]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/vnd.x.restic.rest.v2" && strings.HasSuffix(r.URL.Path, "/snapshots/") {
			t.Errorf("listing without REST API v2 Accept header")
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "pw" {
			t.Errorf("no basic auth")
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	s := Server{URL: srv.URL, User: "alice", Password: "pw"}
	ctx := context.Background()
	l, err := s.ListSnapshots(ctx, "inst")
	if err != nil || !l.Exists || len(l.Snapshots) != 1 || l.Snapshots[strings.Repeat("a", 64)] != 300 {
		t.Fatalf("ListSnapshots = %+v, %v", l, err)
	}
	code = http.StatusNotFound
	if l, err := s.ListSnapshots(ctx, "inst"); err != nil || l.Exists {
		t.Fatalf("missing repository: %+v, %v", l, err)
	}
	if err := s.Check(ctx, "inst"); err != nil {
		t.Fatalf("Check on a missing repository: %v", err)
	}
	code = http.StatusUnauthorized
	if _, err := s.ListSnapshots(ctx, "inst"); !errors.Is(err, ErrAuth) {
		t.Fatalf("401: %v", err)
	}
	if err := s.Check(ctx, "inst"); !errors.Is(err, ErrAuth) {
		t.Fatalf("Check 401: %v", err)
	}
	code = http.StatusInternalServerError
	if _, err := s.ListSnapshots(ctx, "inst"); !errors.Is(err, ErrServer) {
		t.Fatalf("500: %v", err)
	}
	if strings.Contains(s.RepoURL("inst"), "pw") {
		t.Fatal("repository URL carries the password")
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	s = Server{URL: slow.URL, User: "alice", Password: "pw", Timeout: 200 * time.Millisecond}
	if _, err := s.ListSnapshots(ctx, "inst"); !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "pw") {
		t.Fatalf("slow server: %v", err)
	}
}

// TestUnreachableSaysWhy: a refused connection, https spoken to a plain
// http port, a name that does not resolve and a server that does not
// answer each say what happened and the fix, and all stay ErrUnreachable
// (a pull warns and lets the game start).
func TestUnreachableSaysWhy(t *testing.T) {
	ctx := context.Background()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	// The closed server's port stays taken, not listening: a listener
	// opened meanwhile (here or in another test) could be given a freed
	// port, and the "refused" case would reach that server.
	closed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	closedURL := closed.URL
	closed.Close()
	held, err := testport.Hold(strings.TrimPrefix(closedURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, tt := range []struct {
		name, url string
		want      []string
		notWant   string
	}{
		{"refused", closedURL, []string{"connection refused by " + strings.TrimPrefix(closedURL, "http://"), "is the server running"}, "did not answer"},
		{"https to http", strings.Replace(plain.URL, "http://", "https://", 1), []string{"TLS handshake with " + strings.TrimPrefix(plain.URL, "http://") + " failed", "is the URL http://"}, "did not answer"},
		{"dns", "http://no-such-host.invalid:8000", []string{"cannot find no-such-host.invalid (DNS lookup failed)", "check the server URL"}, "did not answer"},
		{"timeout", slow.URL, []string{"did not answer within 200ms", "try again later"}, ""},
	} {
		s := Server{URL: tt.url, User: "alice", Password: "pw", Timeout: 200 * time.Millisecond}
		if tt.name != "timeout" {
			// Only the slow server should hit the bound: on a loaded
			// machine 200ms can pass before a refusal is even read.
			s.Timeout = 10 * time.Second
		}
		_, err := s.ListSnapshots(ctx, "inst")
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: %v is not ErrUnreachable", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tt.name, err, w)
			}
		}
		if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
			t.Errorf("%s: %q says %q", tt.name, err, tt.notWant)
		}
		if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %q", tt.name, err)
		}
	}
}

// TestListings: snapshots/, keys/ and the other folders are listed alike
// (REST API v2, only the names that are ids, at the repository's path),
// and differ only where they mean to: a missing folder is no snapshots, no
// keys, or ErrNotFound; a listing that is not one is ErrUnreachable only
// for ListFiles.
func TestListings(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	code, body := http.StatusOK, `[{"name":"`+b+`","size":2},{"name":"junk","size":1},{"name":"`+a+`","size":1}]`
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/vnd.x.restic.rest.v2" {
			t.Errorf("%s without REST API v2 Accept header", r.URL.Path)
		}
		paths = append(paths, r.URL.EscapedPath())
		w.WriteHeader(code)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	s := Server{URL: srv.URL + "/", User: "al ice", Password: "pw"}
	ctx := context.Background()
	l, err := s.ListSnapshots(ctx, "inst")
	if err != nil || !l.Exists || len(l.Snapshots) != 2 || l.Snapshots[b] != 2 {
		t.Errorf("ListSnapshots = %+v, %v", l, err)
	}
	keys, err := s.ListKeys(ctx, "inst")
	if err != nil || strings.Join(keys, ",") != a+","+b {
		t.Errorf("ListKeys = %v, %v; want both ids, sorted", keys, err)
	}
	files, err := s.ListFiles(ctx, "inst", "index")
	if err != nil || strings.Join(files, ",") != b+","+a {
		t.Errorf("ListFiles = %v, %v", files, err)
	}
	if want := "/al%20ice/inst/snapshots/ /al%20ice/inst/keys/ /al%20ice/inst/index/"; strings.Join(paths, " ") != want {
		t.Errorf("paths %q, want %q", paths, want)
	}
	if got, want := s.RepoURL("inst"), "rest:"+srv.URL+"/al%20ice/inst/"; got != want {
		t.Errorf("RepoURL = %q, want %q", got, want)
	}

	code = http.StatusNotFound
	if l, err := s.ListSnapshots(ctx, "inst"); err != nil || l.Exists || len(l.Snapshots) != 0 {
		t.Errorf("missing: ListSnapshots = %+v, %v", l, err)
	}
	if keys, err := s.ListKeys(ctx, "inst"); err != nil || len(keys) != 0 {
		t.Errorf("missing: ListKeys = %v, %v", keys, err)
	}
	if _, err := s.ListFiles(ctx, "inst", "index"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "index/ of inst") {
		t.Errorf("missing: ListFiles = %v", err)
	}

	code, body = http.StatusOK, "<html>sign in to the wifi</html>"
	if _, err := s.ListSnapshots(ctx, "inst"); err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "unreadable snapshots/ listing") {
		t.Errorf("garbage: ListSnapshots = %v", err)
	}
	if _, err := s.ListKeys(ctx, "inst"); err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "unreadable keys/ listing") {
		t.Errorf("garbage: ListKeys = %v", err)
	}
	if _, err := s.ListFiles(ctx, "inst", "index"); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "unreadable index/ listing") {
		t.Errorf("garbage: ListFiles = %v", err)
	}
	code, body = http.StatusBadGateway, ""
	if _, err := s.ListKeys(ctx, "inst"); !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "listing keys/") {
		t.Errorf("502: ListKeys = %v", err)
	}
}
