package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/engine"
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
		{&engine.ConflictError{Reason: "x"}, 3},
		{wrap(engine.ErrCancelled), 3},
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

// testGetenv is the only environment the commands see: the user's
// folders (tokens, cached keys) are in the test's home, never the real ones.
func testGetenv(t *testing.T) func(string) string {
	t.Helper()
	home, ok := homes.Load(t.Name())
	if !ok {
		home, _ = homes.LoadOrStore(t.Name(), t.TempDir())
	}
	h := home.(string)
	env := map[string]string{"HOME": h, "AppData": filepath.Join(h, "AppData"), "LocalAppData": filepath.Join(h, "Local")}
	return func(k string) string { return env[k] }
}

var homes sync.Map

func run(t *testing.T, stdin string, tty bool, args ...string) (string, string, int) {
	t.Helper()
	var out, errb strings.Builder
	code := Main(context.Background(), Env{
		Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv:     testGetenv(t),
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
	input := strings.Join([]string{srv.URL, "alice", "wrong-pw", "alice", "right-pw", ""}, "\n") + "\n"
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
	dirs, err := instance.DefaultUserDirs(testGetenv(t), runtime.GOOS)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := instance.ReadToken(dirs.TokenFile(cfg))
	if err != nil || tok.Password != "right-pw" {
		t.Fatalf("token = %v, %v", tok, err)
	}
	if _, err := os.Stat(p.LegacyToken()); !os.IsNotExist(err) {
		t.Fatalf("a token in the pack folder: %v", err)
	}
	fi, _ := os.Stat(dirs.TokenFile(cfg))
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

// TestUsage: each usage mistake exits 2 with its own one-line message.
func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"; run "instance-sync help"`},
		{[]string{"pull", "--prefer=both"}, `--prefer must be local, cloud, local:NAME or cloud:NAME (a world), not "both"`},
		{[]string{"pull", "--prefer=cloud:"}, `--prefer must be local, cloud, local:NAME or cloud:NAME (a world), not "cloud:"`},
		{[]string{"pull", "--prefer=cloud", "--prefer=local"}, `--prefer=cloud and --prefer=local contradict each other; name a world for one of them (--prefer=local:NAME)`},
		{[]string{"pull", "--prefer=local:World", "--snapshot=abc"}, "--snapshot goes with --prefer=cloud"},
		{[]string{"pull", "--offline=maybe"}, `--offline must be warn or fail, not "maybe"`},
		{[]string{"push", "extra"}, `push takes no arguments, got "extra"`},
		{[]string{"status", "extra"}, `status takes no arguments, got "extra"`},
		{[]string{"wrap"}, "wrap needs a command: instance-sync wrap -- COMMAND [ARGS...]"},
		{[]string{"init"}, "init needs --url=URL"},
		{[]string{"restore"}, `restore needs one SNAPSHOT id (see "instance-sync history")`},
		{[]string{"restore", "abc", "def"}, `restore takes one SNAPSHOT, got "def" too`},
		{[]string{"pull", "--snapshot=abc"}, "--snapshot goes with --prefer=cloud"},
		// Each command takes only the flags it uses.
		{[]string{"version", "--insecure-http"}, `version: unknown flag --insecure-http ("instance-sync version -h" lists the flags)`},
		{[]string{"enable", "--token-file=x"}, `enable: unknown flag --token-file ("instance-sync enable -h" lists the flags)`},
		{[]string{"status", "--no-gui"}, `status: unknown flag --no-gui ("instance-sync status -h" lists the flags)`},
		{[]string{"setup", "--token-file=x"}, `setup: unknown flag --token-file ("instance-sync setup -h" lists the flags)`},
	} {
		out, errs, code := run(t, "", false, tt.args...)
		if want := "instance-sync: " + tt.want + "\n"; code != 2 || out != "" || errs != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errs, want)
		}
	}
	_, errs, code := run(t, "", false)
	if code != 2 || !strings.HasPrefix(errs, "usage: instance-sync COMMAND [flags]\n") {
		t.Errorf("no command: exit %d, stderr %q", code, errs)
	}
}

// TestCommandHelp: -h names the command's arguments in the README's style
// and lists only the flags the command takes.
func TestCommandHelp(t *testing.T) {
	for _, tt := range []struct {
		cmd, first string
		has, not   []string
	}{
		{"pull", "usage: instance-sync pull [flags] [-- CMD ARGS...]", []string{"--pack-folder=PATH ", "--prefer=local|cloud ", "--json ", "-g "}, nil},
		{"wrap", "usage: instance-sync wrap [flags] -- COMMAND [ARGS...]", []string{"--offline=warn|fail "}, []string{"--prefer"}},
		{"restore", "usage: instance-sync restore [flags] SNAPSHOT", []string{"--json "}, []string{"--no-gui"}},
		{"version", "usage: instance-sync version [flags]", []string{"--pack-folder=PATH ", "--restic-binary=PATH "}, []string{"--insecure-http", "--json"}},
		{"enable", "usage: instance-sync enable [flags]", []string{"--pack-folder=PATH "}, []string{"--token-file"}},
	} {
		out, errs, code := run(t, "", false, tt.cmd, "-h")
		if code != 0 || out != "" || !strings.HasPrefix(errs, tt.first+"\n\nflags:\n") {
			t.Errorf("%s -h: exit %d, stdout %q, stderr:\n%s", tt.cmd, code, out, errs)
			continue
		}
		for _, h := range tt.has {
			if !strings.Contains(errs, "\n  "+h) {
				t.Errorf("%s -h does not list %q:\n%s", tt.cmd, h, errs)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(errs, n) {
				t.Errorf("%s -h lists %q:\n%s", tt.cmd, n, errs)
			}
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

func TestResticBounds(t *testing.T) {
	for _, tt := range []struct {
		cmd, env       string
		stall, timeout time.Duration
		err            bool
	}{
		{"pull", "", pullStall, pullStall, false},
		{"wrap", "", pullStall, pullStall, false},
		{"push", "", 0, 0, false},
		{"status", "", 0, 0, false},
		{"push", "5m", 5 * time.Minute, 0, false},
		{"pull", "4s", 4 * time.Second, pullStall, false},
		{"pull", "soon", 0, 0, true},
		{"pull", "-1s", 0, 0, true},
	} {
		stall, timeout, err := resticBounds(tt.cmd, tt.env)
		if stall != tt.stall || timeout != tt.timeout || (err != nil) != tt.err {
			t.Errorf("resticBounds(%q, %q) = %v, %v, %v; want %v, %v, error %v", tt.cmd, tt.env, stall, timeout, err, tt.stall, tt.timeout, tt.err)
		}
		if err != nil && ExitCode(err) != ExitUsage {
			t.Errorf("resticBounds(%q, %q): exit %d, want a usage error", tt.cmd, tt.env, ExitCode(err))
		}
	}
}
