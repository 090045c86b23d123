package cloudsvc

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"stray"},
		{"--tls-cert", "c.pem"},
		{"--retention-interval", "-1h"},
	} {
		var stderr bytes.Buffer
		if code := MainContext(context.Background(), args, &bytes.Buffer{}, &stderr); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, stderr.String())
		}
	}
}

// TestMainServes runs the real command line in-process: first start creates
// the secret files 0600, both ports answer, and cancelling stops it with 0.
func TestMainServes(t *testing.T) {
	restic := testRestic(t)
	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- MainContext(ctx, []string{"--data", data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
			"--restic-binary", restic, "--retention-interval", "0"}, &bytes.Buffer{}, &stderr)
	}()
	waitFor(t, &stderr, "public port on")
	m := regexp.MustCompile(`public port on (\S+) \((\S+)\), admin port on (\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no addresses in the log:\n%s", stderr.String())
	}
	if want := "http://" + m[1]; m[2] != want {
		t.Errorf("derived public url %s, want %s", m[2], want)
	}
	resp, err := http.Get("http://" + m[1] + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+m[3]+"/accounts", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin: %v %v", err, resp)
	}
	resp.Body.Close()
	if runtime.GOOS != "windows" {
		for _, f := range []string{"admin.token", "server.key", "accounts.db"} {
			fi, err := os.Stat(filepath.Join(data, f))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
			}
		}
	}
	if strings.Contains(stderr.String(), strings.TrimSpace(string(token))) {
		t.Errorf("admin token in the log")
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit %d:\n%s", code, stderr.String())
	}
}

func TestStoreRefusesNewerSchema(t *testing.T) {
	p := filepath.Join(t.TempDir(), "accounts.db")
	s, err := OpenBoltStore(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(Account{User: "u"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	db.Close()
	if _, err := OpenBoltStore(p); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open newer schema: %v", err)
	}
}

func TestSealerBindsUser(t *testing.T) {
	key, _ := newServerKey()
	s, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.seal("alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.open("alice", sealed); err != nil || got != "secret" {
		t.Fatalf("open = %q %v", got, err)
	}
	if _, err := s.open("bob", sealed); err == nil {
		t.Fatal("alice's sealed password opened as bob's")
	}
}

func TestAuthCacheMissesAfterRotation(t *testing.T) {
	c, err := newAuthCache(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.add("u", "pw", []byte("hash1"), now)
	if !c.ok("u", "pw", []byte("hash1"), now) {
		t.Fatal("miss right after add")
	}
	if c.ok("u", "pw", []byte("hash2"), now) {
		t.Fatal("hit with another stored hash")
	}
	if c.ok("u", "other", []byte("hash1"), now) {
		t.Fatal("hit with another password")
	}
	if c.ok("u", "pw", []byte("hash1"), now.Add(2*time.Minute)) {
		t.Fatal("hit after ttl")
	}
}
