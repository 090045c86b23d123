package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	instancesync "git.timemachine.center/timemachine/instance-sync"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/resticbin"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

func TestExitCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{usagef("bad flag"), 2},
		{&instancesync.ConflictError{Reason: "x"}, 3},
		{wrap(instancesync.ErrCancelled), 3},
		{ui.ErrCancelled, 3},
		{wrap(remote.ErrAuth), 4},
		{&restic.Error{Op: "backup", ExitCode: 12, Kind: restic.ErrWrongPassword}, 4},
		{wrap(instance.ErrLockHeld), 5},
		{wrap(resticbin.ErrMissing), 6},
		{exitCodeError{code: 9}, 9},
		{&restic.Error{Op: "backup", ExitCode: 11, Kind: restic.ErrLocked}, 1},
	} {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func run(t *testing.T, stdin string, tty bool, args ...string) (string, string, int) {
	t.Helper()
	var out, errb strings.Builder
	code := Main(context.Background(), Env{
		Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv:     func(string) string { return "" },
		IsTerminal: func() bool { return tty },
	})
	return out.String(), errb.String(), code
}

// TestSetupTerminal drives the terminal setup: a wrong password is said
// and asked again, the right one writes sync.json and a 0600 token.
func TestSetupTerminal(t *testing.T) {
	srv, err := testserver.Start(t.TempDir(), "", map[string]string{"alice": "right-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pack := t.TempDir()
	input := strings.Join([]string{srv.URL, "alice", "wrong-pw", srv.URL, "alice", "right-pw", ""}, "\n") + "\n"
	out, errs, code := run(t, input, true, "setup", "--pack-folder="+pack)
	if code != 0 {
		t.Fatalf("setup exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "wrong user or password") || !strings.Contains(out, "done: instance ") {
		t.Fatalf("setup output:\n%s", out)
	}
	if strings.Contains(out+errs, "right-pw") {
		t.Fatal("setup echoed the password")
	}
	p := instance.Paths{Pack: pack}
	cfg, err := p.LoadConfig()
	if err != nil || cfg.User != "alice" || cfg.URL != srv.URL {
		t.Fatalf("sync.json = %+v, %v", cfg, err)
	}
	tok, err := instance.ReadToken(p.Token())
	if err != nil || tok.Password != "right-pw" {
		t.Fatalf("token = %v, %v", tok, err)
	}
	fi, _ := os.Stat(p.Token())
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token mode %o", fi.Mode().Perm())
	}
	// Again without --force: refused, nothing changed.
	_, errs, code = run(t, input, true, "setup", "--pack-folder="+pack)
	if code == 0 || !strings.Contains(errs, "already set up") {
		t.Fatalf("second setup: exit %d, %s", code, errs)
	}
}

// TestSetupNeedsTerminal: hooks and scripts never get a prompt that waits.
func TestSetupNeedsTerminal(t *testing.T) {
	pack := t.TempDir()
	_, errs, code := run(t, "", false, "setup", "--pack-folder="+pack)
	if code != 1 || !strings.Contains(errs, "setup needs a display or a terminal") || !strings.HasSuffix(errs, "\n") {
		t.Fatalf("exit %d, %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(pack, ".cloud-sync")); !os.IsNotExist(err) {
		t.Fatal("setup without a terminal created .cloud-sync")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"pull", "--prefer=both"}, {"push", "extra"}, {"wrap"}, {"init"}, {"restore"}, {"pull", "--snapshot=abc"}} {
		_, errs, code := run(t, "", false, args...)
		if code != 2 || errs == "" || !strings.HasSuffix(errs, "\n") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}
