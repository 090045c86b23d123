package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/launcher"
)

// TestHooks drives "instance-sync hooks" on a Prism settings file: usage
// mistakes exit 2, install then uninstall gives the file back byte for
// byte, and nothing is written while the launcher runs.
func TestHooks(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prismlauncher.cfg")
	orig, _ := os.ReadFile("../launcher/testdata/prism-global-crlf.cfg")
	if err := os.WriteFile(cfg, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	running := false
	base := launcher.Options{Binary: "/home/jane/.local/bin/instance-sync", GOOS: "linux", Home: dir, Getenv: func(string) string { return "" },
		IsRunning: func(context.Context, launcher.Launcher) (bool, error) { return running, nil }}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		code := report(env, hooks(context.Background(), env, args, base))
		for _, s := range []string{out.String(), errb.String()} {
			if s != "" && !strings.HasSuffix(s, "\n") {
				t.Errorf("output does not end with a newline: %q", s)
			}
		}
		return code, out.String(), errb.String()
	}
	ld := "--launcher-dir=" + dir
	cases := []struct {
		args     []string
		code     int
		out, err string
	}{
		{nil, 2, "", "usage:"},
		{[]string{"frobnicate"}, 2, "", `unknown hooks command "frobnicate"`},
		{[]string{"install"}, 2, "", "no launcher given"},
		{[]string{"install", "--launcher=steam"}, 2, "", `unknown launcher "steam"`},
		{[]string{"install", "--launcher=prism", "--mode=magic"}, 2, "", `unknown mode "magic"`},
		{[]string{"install", "--launcher=prism", "--global", "--instance=x"}, 2, "", "exclude each other"},
		{[]string{"install", "--launcher=prism", "--bogus"}, 2, "", "unknown flag --bogus"},
		{[]string{"status", "--launcher=prism", ld}, 0, "not installed; foreign pre-launch command present", ""},
		{[]string{"install", "--launcher", "prism", ld}, 0, "installed (hooks); adopted pre-launch command", ""},
		{[]string{"install", "--launcher=prism", ld}, 0, "already installed (hooks)", ""},
		{[]string{"status", "--launcher=prism", ld}, 0, cfg + ": installed (hooks)", ""},
		{[]string{"uninstall", "--launcher=prism", ld}, 0, "instance-sync removed", ""},
		{[]string{"uninstall", "--launcher=prism", ld}, 0, "not installed; nothing changed", ""},
		{[]string{"install", "--launcher=prism", ld, "--binary=relative/instance-sync"}, 1, "", "not absolute"},
		{[]string{"--help"}, 0, "usage:", ""},
	}
	for _, tc := range cases {
		code, out, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) {
			t.Errorf("%q: code %d, stdout %q, stderr %q", tc.args, code, out, errs)
		}
	}
	if got, _ := os.ReadFile(cfg); !bytes.Equal(got, orig) {
		t.Errorf("install+uninstall via the CLI changed the file:\n%s", got)
	}
	// A mistyped flag is one line with a hint, not the usage.
	code, out, errs := run("install", "--lancher=prism", ld)
	if want := "instance-sync: hooks install: unknown flag --lancher; did you mean --launcher? (\"instance-sync hooks install -h\" lists the flags)\n"; code != 2 || out != "" || errs != want {
		t.Errorf("mistyped flag: code %d, stdout %q, stderr %q; want %q", code, out, errs, want)
	}
	running = true
	code, _, errs = run("install", "--launcher=prism", ld)
	if code != 1 || !strings.Contains(errs, "Prism Launcher is running") {
		t.Errorf("running launcher: code %d, %q", code, errs)
	}
	if got, _ := os.ReadFile(cfg); !bytes.Equal(got, orig) {
		t.Error("file changed while the launcher was running")
	}
}
