package ui

import (
	"fmt"
	"io"
)

// Kind names the implementation that talks to the player.
type Kind int

const (
	// KindPlain writes one line per message: a launcher's log.
	KindPlain Kind = iota
	// KindTerminal draws a progress bar on a terminal.
	KindTerminal
	// KindDialog shows native dialogs.
	KindDialog
)

func (k Kind) String() string {
	switch k {
	case KindTerminal:
		return "terminal"
	case KindDialog:
		return "dialogs"
	default:
		return "plain"
	}
}

// Facts are what the choice of UI depends on. They are injected so the
// choice is a pure function that tests can drive for every platform.
type Facts struct {
	GOOS   string              // runtime.GOOS
	Getenv func(string) string // the process environment
	// HumanTerminal reports whether the stream human text goes to (stdout,
	// or stderr under --json) is a terminal.
	HumanTerminal bool
	// LookPath finds a helper program (exec.LookPath).
	LookPath func(string) (string, error)
	// DisplayReachable reports whether the display accepts connections
	// (DisplayReachable); nil trusts the environment.
	DisplayReachable func() bool
	NoGUI            bool // --no-gui / -g
	JSON             bool // --json
}

// Pick is the outcome of Choose.
type Pick struct {
	Kind Kind
	// Helper is the dialog program found on Linux and BSD (zenity, qarma
	// or matedialog); "" elsewhere.
	Helper string
	// Color allows ANSI escape codes in terminal output: off under
	// NO_COLOR and whenever the output is not a terminal.
	Color bool
	// JSON sends events to stdout and human text to stderr.
	JSON bool
	// Why explains the choice, for debugging a player's setup.
	Why string
}

// dialogHelpers are the programs github.com/ncruces/zenity drives on Linux
// and the BSDs, in the order it looks for them.
var dialogHelpers = []string{"qarma", "zenity", "matedialog"}

// Choose picks the UI: dialogs when a display is there and --no-gui is
// absent; else a terminal when human text goes to one; else plain lines.
// It never picks dialogs it cannot show: on Linux without $DISPLAY or
// $WAYLAND_DISPLAY, or without a helper program, a hook would otherwise
// fail or hang where nobody can answer.
func Choose(f Facts) Pick {
	getenv := f.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	p := Pick{JSON: f.JSON}
	text := func() Pick {
		if f.HumanTerminal {
			p.Kind = KindTerminal
			p.Color = getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
		} else {
			p.Kind = KindPlain
		}
		return p
	}
	if f.NoGUI {
		p.Why = "--no-gui"
		return text()
	}
	if v := getenv("INSTANCE_SYNC_NO_GUI"); v != "" && v != "0" {
		p.Why = "INSTANCE_SYNC_NO_GUI is set"
		return text()
	}
	switch f.GOOS {
	case "windows":
		// Every interactive Windows session can show a message box.
		p.Kind, p.Why = KindDialog, "windows"
		return p
	case "darwin":
		// osascript needs the logged-in GUI session; over ssh there is none.
		if getenv("SSH_CONNECTION") != "" || getenv("SSH_TTY") != "" {
			p.Why = "ssh session"
			return text()
		}
		if !found(f.LookPath, "osascript") {
			p.Why = "no osascript"
			return text()
		}
		p.Kind, p.Why = KindDialog, "macos"
		return p
	case "js", "wasip1", "plan9", "ios", "android":
		p.Why = "no dialogs on " + f.GOOS
		return text()
	}
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		p.Why = "no display ($DISPLAY and $WAYLAND_DISPLAY are empty)"
		return text()
	}
	helper := ""
	for _, h := range dialogHelpers {
		if found(f.LookPath, h) {
			helper = h
			break
		}
	}
	if helper == "" {
		p.Why = "a display but no zenity or qarma installed"
		return text()
	}
	if f.DisplayReachable != nil && !f.DisplayReachable() {
		p.Why = "the display in $DISPLAY or $WAYLAND_DISPLAY does not answer"
		return text()
	}
	p.Kind, p.Helper, p.Why = KindDialog, helper, "display and "+helper
	return p
}

func found(lookPath func(string) (string, error), name string) bool {
	if lookPath == nil {
		return false
	}
	_, err := lookPath(name)
	return err == nil
}

// Setup is what New builds a UI from besides the Pick.
type Setup struct {
	Stdout, Stderr io.Writer
	// Toolkit draws the dialogs; nil is NativeToolkit.
	Toolkit Toolkit
}

// New builds the UI a Pick names.
func New(p Pick, s Setup) UI {
	human := s.Stdout
	if p.JSON {
		human = s.Stderr
	}
	var u UI
	switch p.Kind {
	case KindDialog:
		tk := s.Toolkit
		if tk == nil {
			tk = NativeToolkit()
		}
		u = NewDialogs(tk, NewPlain(human))
	case KindTerminal:
		u = NewTerminal(human, p.Color)
	default:
		u = NewPlain(human)
	}
	if p.JSON {
		u = NewJSON(s.Stdout, u)
	}
	return u
}

// String renders a Pick for a debug line.
func (p Pick) String() string {
	s := fmt.Sprintf("ui: %s (%s)", p.Kind, p.Why)
	if p.JSON {
		s += ", json events on stdout"
	}
	return s
}
