package ui

import (
	"errors"
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func have(names ...string) func(string) (string, error) {
	return func(n string) (string, error) {
		for _, h := range names {
			if h == n {
				return "/usr/bin/" + n, nil
			}
		}
		return "", errors.New("not found")
	}
}

func TestChoose(t *testing.T) {
	for _, tt := range []struct {
		name   string
		f      Facts
		kind   Kind
		helper string
		color  bool
	}{
		{"linux x11 with zenity", Facts{GOOS: "linux", Getenv: env("DISPLAY", ":0"), LookPath: have("zenity")}, KindDialog, "zenity", false},
		{"linux wayland with qarma", Facts{GOOS: "linux", Getenv: env("WAYLAND_DISPLAY", "wayland-0"), LookPath: have("qarma", "zenity")}, KindDialog, "qarma", false},
		{"freebsd with matedialog", Facts{GOOS: "freebsd", Getenv: env("DISPLAY", ":0"), LookPath: have("matedialog")}, KindDialog, "matedialog", false},
		{"display but no helper, log", Facts{GOOS: "linux", Getenv: env("DISPLAY", ":0"), LookPath: have()}, KindPlain, "", false},
		{"display but no helper, tty", Facts{GOOS: "linux", Getenv: env("DISPLAY", ":0"), LookPath: have(), HumanTerminal: true}, KindTerminal, "", true},
		{"no display, helper, tty", Facts{GOOS: "linux", Getenv: env(), LookPath: have("zenity"), HumanTerminal: true}, KindTerminal, "", true},
		{"no display, log", Facts{GOOS: "linux", Getenv: env(), LookPath: have("zenity")}, KindPlain, "", false},
		{"--no-gui on a tty", Facts{GOOS: "linux", Getenv: env("DISPLAY", ":0"), LookPath: have("zenity"), NoGUI: true, HumanTerminal: true}, KindTerminal, "", true},
		{"--no-gui in a log", Facts{GOOS: "windows", Getenv: env(), NoGUI: true}, KindPlain, "", false},
		{"NO_COLOR", Facts{GOOS: "linux", Getenv: env("NO_COLOR", "1"), HumanTerminal: true}, KindTerminal, "", false},
		{"TERM=dumb", Facts{GOOS: "linux", Getenv: env("TERM", "dumb"), HumanTerminal: true}, KindTerminal, "", false},
		{"INSTANCE_SYNC_NO_GUI", Facts{GOOS: "windows", Getenv: env("INSTANCE_SYNC_NO_GUI", "1")}, KindPlain, "", false},
		{"INSTANCE_SYNC_NO_GUI=0", Facts{GOOS: "windows", Getenv: env("INSTANCE_SYNC_NO_GUI", "0")}, KindDialog, "", false},
		{"windows", Facts{GOOS: "windows", Getenv: env()}, KindDialog, "", false},
		{"macos", Facts{GOOS: "darwin", Getenv: env(), LookPath: have("osascript")}, KindDialog, "", false},
		{"macos over ssh", Facts{GOOS: "darwin", Getenv: env("SSH_CONNECTION", "x"), LookPath: have("osascript"), HumanTerminal: true}, KindTerminal, "", true},
		{"macos without osascript", Facts{GOOS: "darwin", Getenv: env(), LookPath: have()}, KindPlain, "", false},
		{"stale display", Facts{GOOS: "linux", Getenv: env("DISPLAY", ":99"), LookPath: have("zenity"), DisplayReachable: func() bool { return false }}, KindPlain, "", false},
		{"reachable display", Facts{GOOS: "linux", Getenv: env("DISPLAY", ":0"), LookPath: have("zenity"), DisplayReachable: func() bool { return true }}, KindDialog, "zenity", false},
		{"nil getenv and lookpath", Facts{GOOS: "linux"}, KindPlain, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Choose(tt.f)
			if p.Kind != tt.kind || p.Helper != tt.helper || p.Color != tt.color {
				t.Fatalf("Choose = %+v, want kind %s helper %q color %v", p, tt.kind, tt.helper, tt.color)
			}
			if p.Why == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

func TestChooseJSON(t *testing.T) {
	p := Choose(Facts{GOOS: "linux", Getenv: env(), JSON: true})
	if !p.JSON || p.Kind != KindPlain || !strings.Contains(p.String(), "json") {
		t.Fatalf("%+v", p)
	}
}

// TestNew checks which implementation each pick builds, and that under
// --json human text goes to stderr and events to stdout.
func TestNew(t *testing.T) {
	var out, errb strings.Builder
	s := Setup{Stdout: &out, Stderr: &errb, Toolkit: &fakeTK{}}
	if _, ok := New(Pick{Kind: KindDialog}, s).(*Dialogs); !ok {
		t.Fatal("dialog pick did not build Dialogs")
	}
	if _, ok := New(Pick{Kind: KindTerminal}, s).(*Terminal); !ok {
		t.Fatal("terminal pick did not build Terminal")
	}
	if _, ok := New(Pick{Kind: KindPlain}, s).(*Plain); !ok {
		t.Fatal("plain pick did not build Plain")
	}
	u := New(Pick{Kind: KindPlain, JSON: true}, s)
	u.Info("hello")
	u.Event(DoneEvent{Action: "nothing"})
	if errb.String() != "instance-sync: hello\n" {
		t.Fatalf("stderr %q", errb.String())
	}
	if !strings.HasPrefix(out.String(), `{"action":"nothing","message":"","snapshot":"","time":`) || !strings.HasSuffix(out.String(), "\"type\":\"done\"}\n") {
		t.Fatalf("stdout %q", out.String())
	}
}

func TestXAddrs(t *testing.T) {
	for d, want := range map[string]string{
		":0":             "unix /tmp/.X11-unix/X0 @/tmp/.X11-unix/X0",
		"unix:1.0":       "unix /tmp/.X11-unix/X1 @/tmp/.X11-unix/X1",
		"localhost:10.0": "tcp localhost:6010",
		"/private/tmp/com.apple.launchd.x/org.xquartz:0": "unix /private/tmp/com.apple.launchd.x/org.xquartz:0",
		"garbage": " ",
	} {
		n, a := xAddrs(d)
		if got := n + " " + strings.Join(a, " "); got != want {
			t.Errorf("xAddrs(%q) = %q, want %q", d, got, want)
		}
	}
	if DisplayReachable(env("DISPLAY", ":12345")) {
		t.Error("a display nobody serves counted as reachable")
	}
}
