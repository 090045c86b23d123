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

func runEnv(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb strings.Builder
	code := Main(context.Background(), Env{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv:     func(k string) string { return env[k] },
		IsTerminal: func() bool { return false },
	})
	return out.String(), errb.String(), code
}

// TestPackFolderTypedByHand: a --pack-folder that does not exist is a
// typo (exit 2, said); the launcher hook (no --pack-folder, or
// $INST_MC_DIR set) stays silent on a folder that is not set up.
func TestPackFolderTypedByHand(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-pack")
	notOptedIn := t.TempDir()
	for _, cmd := range []string{"pull", "push", "status"} {
		out, errs, code := runEnv(t, nil, cmd, "--pack-folder="+missing)
		if code != 2 || out != "" || errs != "instance-sync: --pack-folder "+missing+" does not exist; check the path (the instance's minecraft folder)\n" {
			t.Errorf("%s with a missing --pack-folder: exit %d, stdout %q, stderr %q", cmd, code, out, errs)
		}
	}
	for _, tt := range []struct {
		env  map[string]string
		args []string
	}{
		{nil, []string{"pull", "--pack-folder=" + notOptedIn}},
		{nil, []string{"push", "--pack-folder=" + notOptedIn}},
		{map[string]string{"INST_MC_DIR": missing}, []string{"pull"}},
		{map[string]string{"INST_MC_DIR": missing}, []string{"push"}},
		{map[string]string{"INST_MC_DIR": notOptedIn}, []string{"pull", "--pack-folder=" + missing}},
	} {
		out, errs, code := runEnv(t, tt.env, tt.args...)
		if code != 0 || out != "" || errs != "" {
			t.Errorf("%v with %v: exit %d, stdout %q, stderr %q; want silence", tt.args, tt.env, code, out, errs)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("a missing --pack-folder was created")
	}
}

// TestInitUsageErrors: mistakes in init's flags are usage errors (exit 2)
// in one line that names the flag, and nothing is written.
func TestInitUsageErrors(t *testing.T) {
	pack := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--url=http://cloud.example.org", "--token=alice:pw"}, "https is required for cloud.example.org"},
		{[]string{"--url=cloud.example.org", "--token=alice:pw"}, "is not a server URL"},
		{[]string{"--url=https://cloud.example.org", "--token=alice:pw", "--join=not-an-id"}, `--join="not-an-id" is not an instance id (26 letters and digits, as "instance-sync status" prints it on the other computer)`},
		{[]string{"--url=https://cloud.example.org", "--token-file=" + filepath.Join(pack, "nope.txt")}, "--token-file " + filepath.Join(pack, "nope.txt") + " does not exist; pass the file with USER:PASSWORD you were given"},
	} {
		args := append([]string{"init", "--pack-folder=" + pack}, tt.args...)
		out, errs, code := runEnv(t, nil, args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "instance-sync: ") || !strings.Contains(errs, tt.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errs, tt.want)
		}
		if strings.Contains(errs, "open ") || strings.Contains(errs, "no such file or directory") {
			t.Errorf("%v: raw Go error: %q", tt.args, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(pack, ".cloud-sync")); !os.IsNotExist(err) {
		t.Fatal("a refused init wrote .cloud-sync")
	}
}

// TestUsageAdvertisesTokenFile: the top-level usage shows the way that
// keeps the password out of argv.
func TestUsageAdvertisesTokenFile(t *testing.T) {
	out, _, code := run(t, "", false, "help")
	if code != 0 || !strings.Contains(out, "init --url=URL --token-file=FILE") || strings.Contains(out, "--token=USER:PASS") {
		t.Fatalf("exit %d, usage:\n%s", code, out)
	}
}

// TestFlagTypo: an unknown flag is one line with a hint, not the usage;
// -h still lists the flags.
func TestFlagTypo(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", "--pakc-folder=/x"}, `instance-sync: pull: unknown flag --pakc-folder; did you mean --pack-folder? ("instance-sync pull -h" lists the flags)` + "\n"},
		{[]string{"init", "--tokenfile=x"}, `instance-sync: init: unknown flag --tokenfile; did you mean --token-file? ("instance-sync init -h" lists the flags)` + "\n"},
		{[]string{"push", "--frobnicate"}, `instance-sync: push: unknown flag --frobnicate ("instance-sync push -h" lists the flags)` + "\n"},
		{[]string{"pull", "--prefer"}, `instance-sync: pull: flag needs an argument: --prefer ("instance-sync pull -h" lists the flags)` + "\n"},
	} {
		out, errs, code := run(t, "", false, tt.args...)
		if code != 2 || out != "" || errs != tt.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tt.args, code, out, errs, tt.want)
		}
	}
	_, errs, code := run(t, "", false, "pull", "-h")
	if code != 0 || !strings.Contains(errs, "-pack-folder") || !strings.Contains(errs, "-prefer") {
		t.Fatalf("pull -h: exit %d, %q", code, errs)
	}
}

// TestVersionProtocol: programs that drive the binary (the Python
// cloud_sync package) read the protocol line of "version" to refuse a
// binary older than they need.
func TestVersionProtocol(t *testing.T) {
	out, errOut, code := run(t, "", false, "version")
	if code != 0 {
		t.Fatalf("version exited %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "instance-sync ") {
		t.Fatalf("version output = %q, want \"instance-sync VERSION\" first", out)
	}
	if want := fmt.Sprintf("protocol: %d", Protocol); lines[1] != want {
		t.Errorf("second line of version = %q, want %q", lines[1], want)
	}
}
