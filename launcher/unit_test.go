package launcher

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestQSettingsEscapeRoundTrip(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{`"C:\Program Files\x.exe" pull`, `\"C:\\Program Files\\x.exe\" pull`},
		{"a=b", `"a=b"`},
		{" lead", `" lead"`},
		{"Jürgen", `J\xfcrgen`},
		{"é1", `\xe9\x31`}, // a hex digit after \x must be escaped too
		{"@cmd", "@@cmd"},
		{"line\nbreak\ttab", `line\nbreak\ttab`},
	}
	for _, tc := range cases {
		got := qsettingsEscape(tc.in)
		if got != tc.want {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := qsettingsUnescape(got)
		if err != nil || back != tc.in {
			t.Errorf("unescape(%q) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
	if _, err := qsettingsUnescape("a, b"); err == nil {
		t.Error("a list was read as a string")
	}
	// Qt 6 writes non-ASCII as raw UTF-8; that must read back too.
	if got, _ := qsettingsUnescape(`"C:\\Users\\Jürgen\\x.exe"`); got != `C:\Users\Jürgen\x.exe` {
		t.Errorf("utf-8 value read as %q", got)
	}
}

func TestLegacyEscapeRoundTrip(t *testing.T) {
	d := parseINI([]byte("a=b\n"), false)
	for _, v := range []string{`"C:\Users\Jane Doe\x.exe" pull`, "/home/x #1/instance-sync push", "tab\there"} {
		raw, err := d.encode("K", v)
		if err != nil {
			t.Fatal(err)
		}
		if back, _ := d.decode(raw + "  # comment"); back != v {
			t.Errorf("%q -> %q -> %q", v, raw, back)
		}
	}
	prism := parseINI([]byte("a=b\n"), true)
	if _, err := prism.encode("PreLaunchCommand", `"x" pull -- "y=z"`); err == nil {
		t.Error("prism's quote stripping was not caught")
	}
}

func TestParseOurs(t *testing.T) {
	cases := []struct {
		d       dialect
		in      string
		ok      bool
		verb    string
		adopted string
	}{
		{qtSplitCommand, `"/opt/instance-sync" pull`, true, "pull", ""},
		{qtSplitCommand, `"C:\Users\Jane Doe\instance-sync.exe" pull -- "$INST_JAVA" -jar a.jar`, true, "pull", `"$INST_JAVA" -jar a.jar`},
		{qtSplitCommand, `/usr/bin/instance-sync push`, true, "push", ""},
		{prismSplitArgs, `"C:\\Tools\\Instance-Sync.EXE" wrap -- gamemoderun`, true, "wrap", "gamemoderun"},
		{prismSplitArgs, `"/opt/instance-sync" wrap --`, true, "wrap", ""},
		{posixShell, `"/opt/My \$ dir/instance-sync" pull --pack-folder="$INST_DIR" -- java -jar x.jar`, true, "pull", "java -jar x.jar"},
		{qtSplitCommand, `"$INST_JAVA" -jar packwiz-installer-bootstrap.jar`, false, "", ""},
		{qtSplitCommand, `/opt/instance-sync-helper pull`, false, "", ""},
		{qtSplitCommand, `"/opt/instance-sync" status`, false, "", ""},
		{qtSplitCommand, `"/opt/instance-sync pull`, false, "", ""},
	}
	for _, tc := range cases {
		c, ok := parseOurs(tc.d, tc.in)
		if ok != tc.ok || c.verb != tc.verb || c.adopted != tc.adopted {
			t.Errorf("parseOurs(%q) = %+v, %v", tc.in, c, ok)
		}
	}
	// What buildCommand writes, parseOurs reads back, in every dialect.
	for _, d := range []dialect{qtSplitCommand, prismSplitArgs, posixShell, javaExec} {
		for _, exe := range []string{linuxExe, spacedExe, windowsExe, "/opt/$weird`dir/instance-sync"} {
			if (d == qtSplitCommand || d == javaExec) && strings.ContainsAny(exe, "$`") {
				continue
			}
			s, err := buildCommand(d, exe, "pull", "", "packwiz -x")
			if err != nil {
				t.Fatal(err)
			}
			c, ok := parseOurs(d, s)
			if !ok || c.exe != exe || c.adopted != "packwiz -x" {
				t.Errorf("dialect %d: %q read back as %+v", d, s, c)
			}
		}
	}
	if _, err := buildCommand(qtSplitCommand, `/a"b/instance-sync`, "pull", "", ""); err == nil {
		t.Error("a quote in the path was accepted")
	}
}

func TestDataDirCandidates(t *testing.T) {
	env := map[string]string{"APPDATA": `C:\Users\Jane Doe\AppData\Roaming`}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		l    Launcher
		goos string
		home string
		want []string
	}{
		{Prism, "windows", `C:\Users\Jane Doe`, []string{`C:\Users\Jane Doe\AppData\Roaming\PrismLauncher`}},
		{Prism, "darwin", "/Users/jane", []string{"/Users/jane/Library/Application Support/PrismLauncher"}},
		{Prism, "linux", "/home/jane", []string{"/home/jane/.local/share/PrismLauncher", "/home/jane/.var/app/org.prismlauncher.PrismLauncher/data/PrismLauncher"}},
		{MultiMC, "windows", `C:\Users\Jane Doe`, nil},
		{MultiMC, "linux", "/home/jane", []string{"/home/jane/.local/share/multimc"}},
		{ATLauncher, "windows", `C:\Users\Jane Doe`, []string{`C:\Users\Jane Doe\AppData\Roaming\ATLauncher`}},
		{ATLauncher, "darwin", "/Users/jane", []string{"/Users/jane/Library/Application Support/ATLauncher"}},
		{ATLauncher, "linux", "/home/jane", []string{"/home/jane/.local/share/ATLauncher", "/home/jane/.local/share/atlauncher", "/home/jane/.atlauncher", "/home/jane/.var/app/com.atlauncher.ATLauncher/data/ATLauncher"}},
	}
	for _, tc := range cases {
		got := DataDirCandidates(Options{Launcher: tc.l, GOOS: tc.goos, Home: tc.home, Getenv: getenv})
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s/%s: got %q want %q", tc.l, tc.goos, got, tc.want)
		}
	}
}

// The data folder is found without --launcher-dir, and an instance by name.
func TestFindsDataDirAndInstanceByName(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".var", "app", "org.prismlauncher.PrismLauncher", "data", "PrismLauncher")
	inst := filepath.Join(dir, "instances", "Jane's Pack")
	if err := os.MkdirAll(inst, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile("testdata/prism-global-fresh.cfg")
	icfg, _ := os.ReadFile("testdata/prism-instance-packwiz.cfg")
	if err := os.WriteFile(filepath.Join(dir, "prismlauncher.cfg"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inst, "instance.cfg"), icfg, 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Launcher: Prism, GOOS: "linux", Home: home, Getenv: func(string) string { return "" }}
	st, err := Status(context.Background(), o)
	if err != nil || st.File != filepath.Join(dir, "prismlauncher.cfg") {
		t.Fatalf("global: %+v %v", st, err)
	}
	o.Instance = "Jane's Pack"
	st, err = Status(context.Background(), o)
	if err != nil || st.File != filepath.Join(inst, "instance.cfg") {
		t.Fatalf("instance: %+v %v", st, err)
	}

	// A global install names the instance that overrides the global commands
	// and tells how to let the Flatpak see the binary.
	o.Instance, o.Binary, o.IsRunning = "", linuxExe, notRunning
	res, err := Install(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{
		`instance "Jane's Pack" sets its own custom commands, so the global ones do not run for it; also run: instance-sync hooks install --launcher=prism --instance="` + inst + `"`,
		`flatpak override --user --filesystem=/home/jane/.local/bin:ro org.prismlauncher.PrismLauncher`,
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	o.Instance = "Jane's Pack"
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	o.Instance = ""
	if res, err := Install(context.Background(), o); err != nil || len(res.Notes) != 1 {
		t.Errorf("after the instance install: notes %q, %v", res.Notes, err)
	}

	o = Options{Launcher: ATLauncher, GOOS: "linux", Home: home, Getenv: func(string) string { return "" }}
	if _, err := Status(context.Background(), o); err == nil || !strings.Contains(err.Error(), "pass --launcher-dir=DIR") {
		t.Errorf("missing atlauncher: %v", err)
	}
}

func TestProcessMatching(t *testing.T) {
	names := processNames(Prism)
	cases := []struct {
		comm, cmdline string
		want          bool
	}{
		{"prismlauncher", "/usr/bin/prismlauncher", true},
		{"prismlaunche", "/app/bin/prismlauncher -d /x", true}, // comm is cut at 15 bytes
		{"bash", "bash -c vim prismlauncher.cfg", false},
		{"instance-sync", "/opt/instance-sync hooks install --launcher=prism", false},
	}
	for _, tc := range cases {
		if got := matchProcess(tc.comm, tc.cmdline, names); got != tc.want {
			t.Errorf("matchProcess(%q, %q) = %v", tc.comm, tc.cmdline, got)
		}
	}
	if !matchProcess("java", "java -jar /home/jane/ATLauncher/ATLauncher.jar", processNames(ATLauncher)) {
		t.Error("ATLauncher jar not seen")
	}
	tasklist := []byte("\"System Idle Process\",\"0\",\"Services\",\"0\",\"8 K\"\r\n\"prismlauncher.exe\",\"4242\",\"Console\",\"1\",\"210,000 K\"\r\n")
	if !tasklistHas(tasklist, names) || tasklistHas(tasklist, processNames(MultiMC)) {
		t.Error("tasklist parsing")
	}
	comms := []byte("    1 /sbin/launchd\n  420 /Applications/Prism Launcher.app/Contents/MacOS/prismlauncher\n  421 /usr/bin/less\n")
	args := []byte("    1 /sbin/launchd\n  420 /Applications/Prism Launcher.app/Contents/MacOS/prismlauncher\n  421 less /Users/jane/Library/Application Support/ATLauncher/logs/atlauncher.log\n")
	if !psHas(comms, args, names) || psHas(comms, args, processNames(ATLauncher)) {
		t.Error("ps parsing")
	}
	javaComms := []byte("  77 /Library/Java/JavaVirtualMachines/temurin-17.jdk/Contents/Home/bin/java\n")
	javaArgs := []byte("  77 /Library/Java/JavaVirtualMachines/temurin-17.jdk/Contents/Home/bin/java -jar /Applications/ATLauncher.app/Contents/Java/ATLauncher.jar\n")
	if !psHas(javaComms, javaArgs, processNames(ATLauncher)) {
		t.Error("ATLauncher on macOS not seen")
	}
}

func TestSymlinkedConfigStaysALink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "prismlauncher.cfg")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(readFixture(t, "prism-global-fresh.cfg")), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(data, "prismlauncher.cfg")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	o := Options{Launcher: Prism, LauncherDir: data, Binary: linuxExe, GOOS: "linux", Home: dir,
		Getenv: func(string) string { return "" }, IsRunning: notRunning}
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	if got := readString(t, real); !strings.Contains(got, "PreLaunchCommand=") {
		t.Errorf("the linked file was not changed:\n%s", got)
	}
}

// The real detector runs on this machine without error; no launcher is
// expected on a build machine.
// A launcher started for the test is seen running, and no longer once it
// has exited. Linux reads /proc; the process is a copy of a system program
// under the launcher's name (Prism) or a "java" running the launcher's jar
// (ATLauncher).
func TestProcessRunningHere(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process list is read from /proc on Linux only")
	}
	dir := t.TempDir()
	copyProgram := func(src, name string) string {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("no %s to copy: %v", src, err)
		}
		dst := filepath.Join(dir, name)
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	cases := []struct {
		l    Launcher
		argv []string
	}{
		{Prism, []string{copyProgram("/bin/sleep", "prismlauncher"), "60"}},
		// "read" is the shell's own: no child process that could outlive
		// the kill (a forked child is a "java" with the jar until it
		// execs). It waits on a pipe the test never writes.
		{ATLauncher, []string{copyProgram("/bin/sh", "java"), "-c", "read x", "/opt/ATLauncher.jar"}},
	}
	for _, c := range cases {
		if running, err := ProcessRunning(context.Background(), c.l); err != nil || running {
			t.Skipf("%s is already running here (or no process list: %v)", c.l, err)
		}
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		running, err := ProcessRunning(context.Background(), c.l)
		if err != nil || !running {
			t.Errorf("%s started as %q: ProcessRunning = %v, %v; want true", c.l, c.argv, running, err)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if running, err := ProcessRunning(context.Background(), c.l); err != nil || running {
			t.Errorf("%s ended: ProcessRunning = %v, %v; want false", c.l, running, err)
		}
	}
}
