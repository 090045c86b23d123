package launcher

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

func FuzzQSettingsEscape(f *testing.F) {
	for _, s := range []string{"", `"C:\x" pull -- a=b`, "@x", " a ", "é1", "a,b;c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		back, err := qsettingsUnescape(qsettingsEscape(s))
		if err != nil || back != s {
			t.Fatalf("%q -> %q -> %q, %v", s, qsettingsEscape(s), back, err)
		}
	})
}

// fuzzRoundTrip: whatever file a player has, if it does not run instance-sync
// yet, a successful install followed by uninstall gives back the same bytes.
func fuzzRoundTrip(t *testing.T, l Launcher, name string, data []byte) {
	if bytes.Contains(bytes.ToLower(data), []byte("instance-sync")) {
		return // uninstall removes what was there already; no round trip
	}
	dir := t.TempDir()
	inst := filepath.Join(dir, "inst")
	if err := os.MkdirAll(inst, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(inst, name)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Launcher: l, Instance: inst, GOOS: "linux", Home: dir, Binary: spacedExe,
		Getenv: func(string) string { return "" }, IsRunning: notRunning}
	if _, err := Install(context.Background(), o); err != nil {
		return
	}
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatalf("second install failed: %v", err)
	}
	if _, err := Uninstall(context.Background(), o); err != nil {
		t.Fatalf("uninstall failed: %v", err)
	}
	got, _ := os.ReadFile(file)
	if !bytes.Equal(got, data) {
		t.Fatalf("not restored:\n--- got\n%q\n--- want\n%q", got, data)
	}
}

func FuzzInstanceCfgRoundTrip(f *testing.F) {
	for _, n := range []string{"prism-instance-packwiz.cfg", "prism-instance-legacy.cfg", "prism-instance-wrapper.cfg", "prism-global-crlf.cfg"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range []string{
		"[General]\nConfigVersion=1.2\nOverrideCommands=true\n[Other]\nPreLaunchCommand=x\n",
		"[General]\r\nConfigVersion=1.2\r\nPreLaunchCommand=\"a, b\"\r\n",
		"OverrideCommands=true\nPreLaunchCommand=java -jar x.jar # comment\nPreLaunchCommand=dup",
		"[General]\nConfigVersion=1.2\nOverrideCommands=true\nWrapperCommand=\\\"/opt/gamemode\\\" --x prime-run\n\n\n",
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, Prism, "instance.cfg", data)
	})
}

func FuzzInstanceJSONRoundTrip(f *testing.F) {
	for _, n := range []string{"atlauncher-instance.json", "atlauncher-instance-win.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, ATLauncher, "instance.json", data)
	})
}
