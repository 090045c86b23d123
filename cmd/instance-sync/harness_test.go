package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
)

// The instance-sync binary, built once per test run for the tests that
// run several syncs at once or in front of a faulty server.
var built struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "isync-bin")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "instance-sync")
		cmd := exec.Command("go", "build", "-o", built.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.path
}

// computer runs instance-sync as one computer would: its own home,
// config and cache folders.
type computer struct {
	t    *testing.T
	bin  string
	env  []string
	home string
}

func newComputer(t *testing.T, bin, resticBin, home string) *computer {
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "INSTANCE_SYNC_RESTIC="+resticBin, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "INST_MC_DIR=", "DISPLAY=", "WAYLAND_DISPLAY=")
	return &computer{t: t, bin: bin, env: env, home: home}
}

// command is instance-sync with args for the pack folder pack.
func (c *computer) command(pack string, args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append(args, "--pack-folder="+pack)...)
	cmd.Env = c.env
	return cmd
}

// run runs instance-sync and returns its output and exit code.
func (c *computer) run(pack string, args ...string) (string, int) {
	c.t.Helper()
	return exitOf(c.t, c.command(pack, args...))
}

// must is run, failing the test unless it exits 0.
func (c *computer) must(pack string, args ...string) string {
	c.t.Helper()
	out, code := c.run(pack, args...)
	if code != 0 {
		c.t.Fatalf("instance-sync %s in %s: exit %d\n%s", args[0], pack, code, out)
	}
	return out
}

func exitOf(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// aliceServer starts the upstream rest-server over work/server with the
// one user alice, stopped when the test ends, and writes her token to
// work/token.
func aliceServer(t *testing.T, work string) (srv *testserver.Server, token string) {
	t.Helper()
	srv, err := testserver.Start(filepath.Join(work, "server"), "", map[string]string{"alice": "alice-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	token = filepath.Join(work, "token")
	if err := os.WriteFile(token, []byte("alice:alice-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, token
}
