package ui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTerminalBar(t *testing.T) {
	for _, color := range []bool{false, true} {
		var out strings.Builder
		tm := NewTerminal(&out, color)
		tm.Delay = 0
		tm.ProgressStart("push")
		tm.ProgressUpdate(Progress{Op: "push", Percent: 50, BytesDone: 1 << 20, BytesTotal: 2 << 20, ETA: 3 * time.Second, CurrentFile: "saves/World/level.dat"})
		tm.Info("a message between two bars")
		time.Sleep(110 * time.Millisecond)
		tm.ProgressUpdate(Progress{Op: "push", Percent: 100, BytesDone: 2 << 20, BytesTotal: 2 << 20})
		tm.ProgressDone()
		s := out.String()
		if !strings.HasSuffix(s, "\n") {
			t.Fatalf("color=%v: last line unterminated: %q", color, s)
		}
		if !strings.Contains(s, "\rpush [##########..........]  50%  1.0 MiB / 2.0 MiB  3s left  saves/World/level") {
			t.Fatalf("color=%v: no bar in %q", color, s)
		}
		if !strings.Contains(s, "instance-sync: a message between two bars\n") {
			t.Fatalf("color=%v: message lost in %q", color, s)
		}
		if got := strings.Contains(s, "\x1b["); got != color {
			t.Fatalf("color=%v but ANSI codes present=%v: %q", color, got, s)
		}
	}
}

func TestTerminalNoBarForQuickOps(t *testing.T) {
	var out strings.Builder
	tm := NewTerminal(&out, false)
	// Longer than any stall between the two calls on a loaded machine.
	tm.Delay = time.Hour
	tm.ProgressStart("pull")
	tm.ProgressUpdate(Progress{Op: "pull", Percent: 100})
	tm.ProgressDone()
	if out.String() != "" {
		t.Fatalf("%q", out.String())
	}
}

func TestBarWidth(t *testing.T) {
	s := Bar(Progress{Op: "pull", Percent: 150, CurrentFile: strings.Repeat("x", 200)}, 80)
	if len(s) != 79 || !strings.Contains(s, "[####################] 100%") {
		t.Fatalf("%d %q", len(s), s)
	}
}

func TestTerminalColorWords(t *testing.T) {
	var plain, color strings.Builder
	NewTerminal(&plain, false).Warn("w")
	NewTerminal(&color, true).Error("e")
	if plain.String() != "instance-sync: warning: w\n" || !strings.Contains(color.String(), "\x1b[31m") {
		t.Fatalf("%q %q", plain.String(), color.String())
	}
}

// TestTerminalConflictHeadless: the hooks never read stdin, even at a
// terminal.
func TestTerminalConflictHeadless(t *testing.T) {
	tm := NewTerminal(&strings.Builder{}, false)
	tm.In = strings.NewReader("cloud\n")
	if c, err := tm.Conflict(context.Background(), conflict); c != ChoiceCancel || !errors.Is(err, ErrHeadless) {
		t.Fatalf("%v %v", c, err)
	}
	if _, err := NewTerminal(&strings.Builder{}, false).Login(context.Background(), Login{}); !errors.Is(err, ErrHeadless) {
		t.Fatalf("login without input: %v", err)
	}
}

func TestTerminalLogin(t *testing.T) {
	var out strings.Builder
	tm := NewTerminal(&out, false)
	// The default URL; a wrong password (the account is asked again on the
	// same server); a refusal that is not the password (the URL is asked
	// again, prefilled with the last one); then the right server.
	tm.In = strings.NewReader("\nalice\nwrong\nalice\npw\nhttps://b\nalice\npw\n2\n")
	var checks []string
	c, err := tm.Login(context.Background(), Login{
		URL: "https://a",
		Check: func(_ context.Context, url, user, pw string) error {
			checks = append(checks, url+" "+user+" "+pw)
			switch {
			case pw == "wrong":
				return ErrBadCredentials
			case url == "https://a":
				return errors.New("server unreachable; check the URL")
			}
			return nil
		},
		Instances: func(context.Context, Credentials) ([]Instance, bool) {
			return []Instance{{ID: "01A", Label: "one"}, {ID: "01B", Label: "two"}}, true
		},
	})
	if err != nil || c.URL != "https://b" || c.Join != "01B" {
		t.Fatalf("%+v %v\n%s", c, err, out.String())
	}
	if want := "https://a alice wrong\nhttps://a alice pw\nhttps://b alice pw"; strings.Join(checks, "\n") != want {
		t.Fatalf("checks:\n%s\nwant:\n%s", strings.Join(checks, "\n"), want)
	}
	if strings.Count(out.String(), "Server URL [https://a]: ") != 2 || !strings.Contains(out.String(), "wrong user or password; try again\n") || !strings.Contains(out.String(), "server unreachable; check the URL; try again\n") {
		t.Fatal(out.String())
	}
	// End of input is a cancel, not an endless loop of empty answers.
	tm = NewTerminal(&strings.Builder{}, false)
	tm.In = strings.NewReader("")
	if _, err := tm.Login(context.Background(), Login{URL: "x"}); !errors.Is(err, ErrCancelled) {
		t.Fatalf("eof: %v", err)
	}
}
