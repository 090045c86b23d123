package cloudsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

// testRestic finds the restic the tests drive (see internal/testenv).
func testRestic(t testing.TB) string { return testenv.Restic(t) }

// testServer is a cloud-svc serving both ports on 127.0.0.1:0.
type testServer struct {
	t      testing.TB
	svc    *Service
	data   string
	pub    string // http://127.0.0.1:port
	admin  string
	restic string
	cancel context.CancelFunc
	done   chan error
}

func startServer(t testing.TB, data string, mutate func(*Config)) *testServer {
	t.Helper()
	restic := testRestic(t)
	cfg := Config{
		DataDir:      data,
		ResticBinary: restic,
		BcryptCost:   bcrypt.MinCost,
		KeepSafety:   30 * 24 * time.Hour,
		Policy:       Policy{KeepLast: 10},
		Log:          io.Discard,
	}
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pubLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, svc: svc, data: data, restic: restic, cancel: cancel, done: make(chan error, 1),
		pub: "http://" + pubLn.Addr().String(), admin: "http://" + admLn.Addr().String()}
	go func() { ts.done <- svc.Serve(ctx, pubLn, admLn, "", "") }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down and closes the store (idempotent).
func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	if err := <-ts.done; err != nil {
		ts.t.Errorf("serve: %v", err)
	}
	if err := ts.svc.Close(); err != nil {
		ts.t.Errorf("close: %v", err)
	}
	ts.cancel = nil
}

// adminDo calls the admin API with the right token unless token is given.
func (ts *testServer) adminDo(method, path, body string, token ...string) (int, map[string]any, []byte) {
	ts.t.Helper()
	tok := ts.svc.AdminToken()
	if len(token) > 0 {
		tok = token[0]
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.admin+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}

type player struct {
	user, password string
}

func (ts *testServer) createAccount(user string) player {
	ts.t.Helper()
	code, m, raw := ts.adminDo("POST", "/accounts", `{"user":"`+user+`"}`)
	if code != http.StatusCreated {
		ts.t.Fatalf("create %s: %d %s", user, code, raw)
	}
	tok, _ := m["token"].(string)
	u, p, ok := strings.Cut(tok, ":")
	if !ok || u != user || p == "" {
		ts.t.Fatalf("create %s: bad token in %s", user, raw)
	}
	return player{user: u, password: p}
}

// publicGet does an authenticated GET on the public port.
func (ts *testServer) publicGet(p player, path string) (int, []byte) {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.pub+path, nil)
	if p.user != "" {
		req.SetBasicAuth(p.user, p.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// client runs restic as a player would: repository over REST, credentials
// and password only in the environment.
func (ts *testServer) client(ctx context.Context, p player, repoUser, inst string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, ts.restic, args...)
	cmd.Env = append(cleanEnv(),
		"RESTIC_REPOSITORY=rest:"+ts.pub+"/"+repoUser+"/"+inst+"/",
		"RESTIC_REST_USERNAME="+p.user,
		"RESTIC_REST_PASSWORD="+p.password,
		"RESTIC_PASSWORD="+p.password,
		"RESTIC_CACHE_DIR="+filepath.Join(ts.data, "..", "client-cache"),
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func (ts *testServer) mustClient(p player, inst string, args ...string) string {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := ts.client(ctx, p, p.user, inst, args...)
	if err != nil {
		ts.t.Fatalf("restic %s as %s: %v\n%s", strings.Join(args, " "), p.user, err, out)
	}
	return out
}

// local runs restic directly on the repository folder, as the server does.
func (ts *testServer) local(password, user, inst string, args ...string) (string, error) {
	return ts.localRepo(password, filepath.Join(ts.data, "repos", user, inst), args...)
}

// localRepo runs restic directly on the repository folder repo.
func (ts *testServer) localRepo(password, repo string, args ...string) (string, error) {
	cmd := exec.Command(ts.restic, append([]string{"--repo", repo}, args...)...)
	cmd.Env = append(cleanEnv(), "RESTIC_PASSWORD="+password, "RESTIC_CACHE_DIR="+filepath.Join(ts.data, "..", "local-cache"))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// writeTree fills dir with a few files and returns them by relative path.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshotIDFromBackup returns the id restic backup --json reports.
func snapshotIDFromBackup(t testing.TB, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		var m struct {
			MessageType string `json:"message_type"`
			SnapshotID  string `json:"snapshot_id"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.MessageType == "summary" && m.SnapshotID != "" {
			return m.SnapshotID
		}
	}
	t.Fatalf("no snapshot id in backup output:\n%s", out)
	return ""
}

// isyncArgs adds --restic-binary and --no-gui to an instance-sync command
// line; init takes neither (each command takes only the flags it uses).
func isyncArgs(restic string, args ...string) []string {
	out := append([]string(nil), args...)
	if len(args) > 0 && args[0] == "init" {
		return out
	}
	return append(out, "--restic-binary="+restic, "--no-gui")
}
