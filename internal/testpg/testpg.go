// Package testpg starts a private PostgreSQL server for tests: Debian's
// postgresql package (initdb + pg_ctl), a temporary data directory, a port of
// its own on 127.0.0.1 and a unix socket in that directory, torn down after.
// A test that needs it skips when PostgreSQL is not installed, except under
// CI=true, where that is a failure.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"git.timemachine.center/timemachine/instance-sync/internal/testport"
)

// Server is one running PostgreSQL.
type Server struct {
	Dir      string // data directory (also holds the socket)
	Port     int
	User     string
	Password string // for TCP connections; pass it outside the URL
	bin      string
	runAs    []string  // prefix that runs a command as the unprivileged owner
	held     io.Closer // keeps Port from other listeners (testport.Reserve)
	dbs      atomic.Int64
}

// Bin returns the folder holding initdb and pg_ctl, or "" when PostgreSQL
// is not installed. $INSTANCE_SYNC_TEST_PGBIN overrides the search.
func Bin() string {
	if p := os.Getenv("INSTANCE_SYNC_TEST_PGBIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return ""
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	return filepath.Dir(matches[0])
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Need returns the PostgreSQL bin folder or skips the test (fails under
// CI=true).
func Need(t testing.TB) string {
	t.Helper()
	bin := Bin()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL not found: apt-get install postgresql (required under CI=true)")
		}
		t.Skip("PostgreSQL not found: apt-get install postgresql to run this test")
	}
	return bin
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// Shared starts one server for the whole test binary on first use; call
// StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := Need(t)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start(bin)
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

// Start runs initdb and starts the server. As root, PostgreSQL refuses to
// run, so it runs as the "postgres" account (Debian creates it).
func Start(bin string) (*Server, error) {
	s := &Server{bin: bin, User: "cloudsvc"}
	pw := make([]byte, 12)
	rand.Read(pw)
	s.Password = hex.EncodeToString(pw)
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL cannot run as root and there is no postgres account: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if p, err := exec.LookPath("runuser"); err == nil {
			s.runAs = []string{p, "-u", "postgres", "--"}
		} else if p, err := exec.LookPath("setpriv"); err == nil {
			s.runAs = []string{p, "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}
		} else {
			return nil, fmt.Errorf("running PostgreSQL as postgres needs runuser or setpriv")
		}
	}
	// Under /tmp (not t.TempDir, whose parents are 0700 and root's) so the
	// postgres account can reach it.
	dir, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	if uid >= 0 {
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				s.Stop()
				return nil, err
			}
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", s.User, "--pwfile", pwfile, "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"); err != nil {
		s.Stop()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)
	// A port reserved, not found free and closed: another test's server
	// could be given a closed port before PostgreSQL binds it (PostgreSQL
	// listens with address reuse, beside the reservation).
	addr, held, err := testport.Reserve()
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.held = held
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	s.Port = port
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, dir)
	if out, err := s.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		s.Stop()
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return s, nil
}

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, s.runAs...), filepath.Join(s.bin, tool))
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.Dir
	return cmd.CombinedOutput()
}

// Stop shuts the server down and removes its directory.
func (s *Server) Stop() {
	if s.Port != 0 {
		s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
		s.Port = 0
	}
	if s.held != nil {
		s.held.Close()
		s.held = nil
	}
	if s.Dir != "" {
		os.RemoveAll(s.Dir)
	}
}

// URL is a connection URL for database db over TCP, without the password.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", s.User, s.Port, db)
}

// NewDatabase creates an empty database and returns its URL (without the
// password: use s.Password).
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = s.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return s.URL(name)
}
