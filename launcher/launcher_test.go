package launcher

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

const (
	linuxExe   = "/home/jane/.local/bin/instance-sync"
	spacedExe  = "/home/jane/My Games #1/instance-sync"
	windowsExe = `C:\Users\Jane Doe\AppData\Local\instance-sync\instance-sync.exe`
)

func notRunning(context.Context, Launcher) (bool, error) { return false, nil }

// fixture copies testdata/name to where the launcher keeps that kind of file
// and returns options pointing at it.
func fixture(t *testing.T, l Launcher, name string, instance bool) (Options, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := Options{Launcher: l, GOOS: "linux", Home: dir, Getenv: func(string) string { return "" }, IsRunning: notRunning}
	var file string
	switch {
	case instance && l == ATLauncher:
		file = filepath.Join(dir, "instances", "Janes Pack", "instance.json")
		o.Instance = filepath.Dir(file)
	case instance:
		file = filepath.Join(dir, "instances", "Janes Pack", "instance.cfg")
		// the game folder inside the instance is accepted too
		o.Instance = filepath.Join(filepath.Dir(file), "minecraft")
	default:
		file = filepath.Join(dir, "data", markerFile(l))
		o.LauncherDir = filepath.Join(dir, "data")
		o.Global = true
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return o, file
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestInstallGoldenAndUninstallRestores(t *testing.T) {
	cases := []struct {
		name     string
		launcher Launcher
		fixture  string
		instance bool
		goos     string
		exe      string
		mode     Mode
		state    string // Summary after install
	}{
		{"prism-global-fresh-hooks", Prism, "prism-global-fresh.cfg", false, "linux", linuxExe, ModeHooks, "installed (hooks)"},
		{"prism-global-fresh-wrap-windows", Prism, "prism-global-fresh.cfg", false, "windows", windowsExe, ModeWrap, "installed (wrap)"},
		{"prism-global-crlf-adopt-windows", Prism, "prism-global-crlf.cfg", false, "windows", windowsExe, ModeHooks,
			`installed (hooks); adopted pre-launch command: "$INST_JAVA" -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml`},
		{"prism-instance-packwiz-adopt", Prism, "prism-instance-packwiz.cfg", true, "windows", windowsExe, ModeHooks,
			`installed (hooks); adopted pre-launch command: "$INST_JAVA" -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml?ref=main`},
		{"prism-instance-legacy-spaces", Prism, "prism-instance-legacy.cfg", true, "linux", spacedExe, ModeHooks, "installed (hooks)"},
		{"prism-instance-wrapper-chain", Prism, "prism-instance-wrapper.cfg", true, "linux", linuxExe, ModeWrap,
			"installed (wrap); adopted wrapper command: gamemoderun"},
		{"multimc-global-hooks", MultiMC, "multimc-global.cfg", false, "windows", windowsExe, ModeHooks, "installed (hooks)"},
		{"atlauncher-instance-hooks", ATLauncher, "atlauncher-instance.json", true, "linux", spacedExe, ModeHooks, "installed (hooks)"},
		{"atlauncher-instance-adopt-windows", ATLauncher, "atlauncher-instance-win.json", true, "windows", windowsExe, ModeHooks,
			`installed (hooks); adopted pre-launch command: "$INST_JAVA" -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml`},
		{"atlauncher-global-hooks", ATLauncher, "atlauncher-global.json", false, "linux", linuxExe, ModeHooks, "installed (hooks)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			o, file := fixture(t, tc.launcher, tc.fixture, tc.instance)
			o.GOOS, o.Binary, o.Mode = tc.goos, tc.exe, tc.mode
			orig, _ := os.ReadFile(file)

			res, err := Install(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Changed || res.File != file {
				t.Fatalf("install: changed=%v file=%s", res.Changed, res.File)
			}
			if got := res.State.Summary(); got != tc.state {
				t.Errorf("state after install:\n got %s\nwant %s", got, tc.state)
			}
			installed, _ := os.ReadFile(file)
			checkGolden(t, tc.name+filepath.Ext(tc.fixture), installed)
			if bak, _ := os.ReadFile(file + BackupSuffix); !bytes.Equal(bak, orig) {
				t.Errorf("backup is not the original:\n%s", bak)
			}

			// Install twice: nothing changes, nothing is duplicated.
			res, err = Install(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := os.ReadFile(file)
			if res.Changed || !bytes.Equal(again, installed) {
				t.Errorf("second install changed the file:\n%s", again)
			}
			for _, verb := range []string{" pull", " push", " wrap --"} {
				if n := strings.Count(string(again), verb); n > 1 {
					t.Errorf("%q appears %d times", verb, n)
				}
			}

			st, err := Status(ctx, o)
			if err != nil || st.Summary() != tc.state {
				t.Errorf("status = %q, %v; want %q", st.Summary(), err, tc.state)
			}

			res, err = Uninstall(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			restored, _ := os.ReadFile(file)
			if !res.Changed || !bytes.Equal(restored, orig) {
				t.Errorf("uninstall did not restore the original:\n--- got\n%s\n--- want\n%s", restored, orig)
			}
			if bak, _ := os.ReadFile(file + BackupSuffix); !bytes.Equal(bak, orig) {
				t.Errorf("uninstall replaced the backup of the original:\n%s", bak)
			}

			// Uninstall twice: nothing to do.
			if res, err := Uninstall(ctx, o); err != nil || res.Changed {
				t.Errorf("second uninstall: changed=%v err=%v", res.Changed, err)
			}
		})
	}
}

// Without a backup, uninstall still removes our commands and restores the
// adopted one from the command text itself.
func TestUninstallWithoutBackup(t *testing.T) {
	ctx := context.Background()
	o, file := fixture(t, Prism, "prism-instance-packwiz.cfg", true)
	o.Binary = linuxExe
	orig, _ := os.ReadFile(file)
	if _, err := Install(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file + BackupSuffix); err != nil {
		t.Fatal(err)
	}
	if _, err := Uninstall(ctx, o); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	want := strings.Replace(string(orig), "PostExitCommand=\n", "", 1)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Switching modes keeps the adopted command and the pristine backup.
func TestSwitchModes(t *testing.T) {
	ctx := context.Background()
	o, file := fixture(t, Prism, "prism-instance-packwiz.cfg", true)
	o.Binary = linuxExe
	orig, _ := os.ReadFile(file)
	if _, err := Install(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.Mode = ModeWrap
	res, err := Install(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.State.Summary(); !strings.HasPrefix(got, "installed (wrap); foreign pre-launch command present: \"$INST_JAVA\"") {
		t.Errorf("after switch: %s", got)
	}
	got, _ := os.ReadFile(file)
	if !strings.Contains(string(got), `WrapperCommand="\"/home/jane/.local/bin/instance-sync\" wrap --"`) &&
		!strings.Contains(string(got), `WrapperCommand=\"/home/jane/.local/bin/instance-sync\" wrap --`) {
		t.Errorf("wrapper not set:\n%s", got)
	}
	if _, err := Uninstall(ctx, o); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(file)
	if !bytes.Equal(got, orig) {
		t.Errorf("not restored:\n%s", got)
	}
}

func TestInstallRefuses(t *testing.T) {
	cases := []struct {
		name     string
		launcher Launcher
		fixture  string
		instance bool
		mode     Mode
		running  bool
		want     string
	}{
		{"foreign post-exit", Prism, "prism-instance-foreign-post.cfg", true, ModeHooks, false, "post-exit command is not instance-sync's (/home/jane/bin/backup-worlds.sh)"},
		{"predecessor", Prism, "prism-instance-predecessor.cfg", true, ModeHooks, false, "runs the old cloud-sync.pyz"},
		{"switched-off wrapper", Prism, "prism-instance-switched-off.cfg", true, ModeHooks, false, "wrapper command that is switched off (OverrideCommands is not true): prime-run"},
		{"launcher running", Prism, "prism-global-fresh.cfg", false, ModeHooks, true, "Prism Launcher is running and rewrites"},
		{"multimc running", MultiMC, "multimc-global.cfg", false, ModeHooks, true, "MultiMC is running"},
		{"atlauncher running", ATLauncher, "atlauncher-instance.json", true, ModeHooks, true, "ATLauncher is running"},
		{"atlauncher switched-off command", ATLauncher, "atlauncher-global-switched-off.json", false, ModeHooks, false, "pre-launch command that is switched off (enableCommands is not true): /home/jane/bin/old-script.sh"},
		{"atlauncher wrap", ATLauncher, "atlauncher-instance.json", true, ModeWrap, false, "use --mode=hooks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, file := fixture(t, tc.launcher, tc.fixture, tc.instance)
			o.Binary, o.Mode = linuxExe, tc.mode
			o.IsRunning = func(context.Context, Launcher) (bool, error) { return tc.running, nil }
			orig, _ := os.ReadFile(file)
			if tc.running {
				if _, err := Uninstall(context.Background(), o); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("uninstall err = %v, want %q", err, tc.want)
				}
			}
			_, err := Install(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("message is not one lowercase line: %q", msg)
			}
			if !strings.Contains(msg, file) {
				t.Errorf("message does not name the file: %q", msg)
			}
			got, _ := os.ReadFile(file)
			if !bytes.Equal(got, orig) {
				t.Errorf("file changed:\n%s", got)
			}
			if _, err := os.Stat(file + BackupSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("backup written for a refused edit")
			}
		})
	}
}

func TestAdoptShellOperatorsRefusedOnPOSIXATLauncher(t *testing.T) {
	o, file := fixture(t, ATLauncher, "atlauncher-instance-win.json", true)
	b, _ := os.ReadFile(file)
	b = bytes.Replace(b, []byte("pack.toml\""), []byte("pack.toml && echo done\""), 1)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Binary = linuxExe
	_, err := Install(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "shell operators") {
		t.Fatalf("err = %v", err)
	}
}

func TestStatusCases(t *testing.T) {
	cases := []struct {
		launcher Launcher
		fixture  string
		instance bool
		want     string
	}{
		{Prism, "prism-global-fresh.cfg", false, "not installed"},
		{Prism, "prism-global-crlf.cfg", false, `not installed; foreign pre-launch command present: "$INST_JAVA" -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml`},
		{Prism, "prism-instance-foreign-post.cfg", true, "not installed; foreign post-exit command present: /home/jane/bin/backup-worlds.sh"},
		{Prism, "prism-instance-wrapper.cfg", true, "not installed; foreign wrapper command present: gamemoderun"},
		{MultiMC, "multimc-global.cfg", false, "not installed"},
		{ATLauncher, "atlauncher-global.json", false, "not installed"},
		{Prism, "golden/prism-global-fresh-hooks.cfg", false, "installed (hooks)"},
		{Prism, "golden/prism-global-fresh-wrap-windows.cfg", false, "installed (wrap)"},
		{Prism, "golden/prism-instance-packwiz-adopt.cfg", true, `installed (hooks); adopted pre-launch command: "$INST_JAVA" -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml?ref=main`},
		{ATLauncher, "golden/atlauncher-instance-hooks.json", true, "installed (hooks)"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			o, _ := fixture(t, tc.launcher, tc.fixture, tc.instance)
			st, err := Status(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Summary(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestStatusPartialAndDisabled(t *testing.T) {
	o, file := fixture(t, Prism, "prism-instance-wrapper.cfg", true)
	data := strings.Replace(readString(t, file), "PreLaunchCommand=\n", "PreLaunchCommand=\\\"/opt/instance-sync\\\" pull\n", 1)
	data = strings.Replace(data, "OverrideCommands=true", "OverrideCommands=false", 1)
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Status(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := `partly installed; run "instance-sync hooks install" again; but custom commands are switched off in the launcher; foreign wrapper command present: gamemoderun`
	if st.Summary() != want {
		t.Errorf("got  %s\nwant %s", st.Summary(), want)
	}
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An instance install must not shadow what the instance inherited from the
// launcher-wide settings: it adopts or copies those commands instead.
func TestInstanceInheritsLauncherWideCommands(t *testing.T) {
	write := func(t *testing.T, p, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	packwiz := `\"$INST_JAVA\" -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml`
	cases := []struct {
		name     string
		launcher Launcher
		global   string // file name under the data folder, and its content
		globalIn string
		instance string
		instIn   string
		mode     Mode
		want     []string // lines in the instance file after install
		refuse   string
	}{
		{"prism adopts global pre-launch", Prism, "prismlauncher.cfg",
			"[General]\nConfigVersion=1.2\nPreLaunchCommand=" + packwiz + "\n",
			"instance.cfg", readFixture(t, "prism-instance-legacy.cfg"), ModeHooks,
			[]string{`PreLaunchCommand="/home/jane/.local/bin/instance-sync" pull -- "$INST_JAVA" -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml`, "OverrideCommands=true"}, ""},
		{"prism wrap copies global pre-launch and adopts global wrapper", Prism, "prismlauncher.cfg",
			"[General]\nConfigVersion=1.2\nPreLaunchCommand=" + packwiz + "\nWrapperCommand=gamemoderun\n",
			"instance.cfg", "[General]\nConfigVersion=1.2\nOverrideCommands=false\nname=x\n", ModeWrap,
			[]string{"PreLaunchCommand=" + packwiz, `WrapperCommand=\"/home/jane/.local/bin/instance-sync\" wrap -- gamemoderun`}, ""},
		{"prism refuses to shadow global post-exit", Prism, "prismlauncher.cfg",
			"[General]\nConfigVersion=1.2\nPostExitCommand=/home/jane/bin/backup.sh\n",
			"instance.cfg", "[General]\nConfigVersion=1.2\nname=x\n", ModeHooks,
			nil, "the launcher-wide post-exit command is not instance-sync's (/home/jane/bin/backup.sh)"},
		{"atlauncher adopts global pre-launch", ATLauncher, "configs/ATLauncher.json",
			"{\n  \"enableCommands\": true,\n  \"preLaunchCommand\": \"java -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml\"\n}\n",
			"instance.json", readFixture(t, "atlauncher-instance.json"), ModeHooks,
			[]string{`"preLaunchCommand": "\"/home/jane/.local/bin/instance-sync\" pull --pack-folder=\"$INST_DIR\" -- java -jar packwiz-installer-bootstrap.jar https://example.com/pack.toml"`}, ""},
		{"atlauncher ignores switched-off global commands", ATLauncher, "configs/ATLauncher.json",
			"{\n  \"enableCommands\": false,\n  \"postExitCommand\": \"/home/jane/bin/backup.sh\"\n}\n",
			"instance.json", readFixture(t, "atlauncher-instance.json"), ModeHooks,
			[]string{`"postExitCommand": "\"/home/jane/.local/bin/instance-sync\" push --pack-folder=\"$INST_DIR\""`, `"enableCommands": true`}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, filepath.FromSlash(tc.global)), tc.globalIn)
			file := filepath.Join(dir, "instances", "x", tc.instance)
			write(t, file, tc.instIn)
			o := Options{Launcher: tc.launcher, Instance: filepath.Dir(file), Mode: tc.mode, Binary: linuxExe, GOOS: "linux",
				Home: dir, Getenv: func(string) string { return "" }, IsRunning: notRunning}
			_, err := Install(context.Background(), o)
			if tc.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("err = %v, want %q", err, tc.refuse)
				}
				if got := readString(t, file); got != tc.instIn {
					t.Errorf("file changed:\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := readString(t, file)
			for _, w := range tc.want {
				if !strings.Contains(got, w+"\n") && !strings.Contains(got, w+",\n") {
					t.Errorf("missing %s in\n%s", w, got)
				}
			}
			if _, err := Uninstall(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if got := readString(t, file); got != tc.instIn {
				t.Errorf("uninstall did not restore:\n--- got\n%s\n--- want\n%s", got, tc.instIn)
			}
		})
	}
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	return readString(t, filepath.Join("testdata", name))
}

func TestStatusOfInheritingInstance(t *testing.T) {
	dir := t.TempDir()
	global := filepath.Join(dir, "prismlauncher.cfg")
	inst := filepath.Join(dir, "instances", "Old Pack", "instance.cfg")
	if err := os.MkdirAll(filepath.Dir(inst), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, f := range map[string]string{global: "golden/prism-global-fresh-hooks.cfg", inst: "prism-instance-legacy.cfg"} {
		if err := os.WriteFile(p, []byte(readFixture(t, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{Launcher: Prism, Instance: filepath.Dir(inst), GOOS: "linux", Home: dir, Getenv: func(string) string { return "" }}
	st, err := Status(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := "not installed; the instance runs the launcher-wide commands (" + global + ": installed (hooks))"
	if st.Summary() != want {
		t.Errorf("got  %s\nwant %s", st.Summary(), want)
	}
}
