package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Terminal talks to a player at a terminal: lines like Plain, plus a
// progress bar redrawn in place with a carriage return. ANSI codes (colour,
// erase line) only when Color is on: NO_COLOR and logs get plain text.
//
// Conflict never reads stdin, since hooks must not: it returns ErrHeadless
// and the engine prints the facts and names --prefer. Login prompts on In
// only when the caller set In (setup, with stdin a terminal).
type Terminal struct {
	mu    sync.Mutex
	w     io.Writer
	color bool

	// In is where Login reads answers; nil means it cannot ask.
	In io.Reader
	// ReadPassword reads a password without echo; nil reads a line of In.
	ReadPassword func() (string, error)
	// Delay is how long an operation runs before the bar appears, so
	// quick ones do not flash one (default 1s).
	Delay time.Duration
	// Width of the bar line in columns (default 80).
	Width int

	in       *bufio.Reader
	op       string
	started  time.Time
	drawn    int // length of the bar line on screen; 0 when none
	lastDraw time.Time
}

// NewTerminal writes to w; color allows ANSI escape codes.
func NewTerminal(w io.Writer, color bool) *Terminal {
	return &Terminal{w: w, color: color, Delay: time.Second, Width: 80}
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiErase  = "\x1b[K"
)

func (t *Terminal) paint(code, s string) string {
	if !t.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

// clearBar removes a drawn progress bar so a message can take its line.
// The caller holds mu.
func (t *Terminal) clearBar() {
	if t.drawn == 0 {
		return
	}
	if t.color {
		fmt.Fprint(t.w, "\r"+ansiErase)
	} else {
		fmt.Fprint(t.w, "\r"+strings.Repeat(" ", t.drawn)+"\r")
	}
	t.drawn = 0
}

func (t *Terminal) line(kind, code, msg string) {
	msg = strings.TrimRight(msg, "\n")
	if msg == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clearBar()
	fmt.Fprintf(t.w, "instance-sync: %s%s\n", t.paint(code, kind), msg)
}

func (t *Terminal) Info(msg string)  { t.line("", "", msg) }
func (t *Terminal) Warn(msg string)  { t.line("warning: ", ansiYellow, msg) }
func (t *Terminal) Error(msg string) { t.line("error: ", ansiRed+ansiBold, msg) }
func (t *Terminal) Event(Event)      {}

// Conflict returns ErrHeadless: a hook has no one at the keyboard, and a
// player at a terminal decides with --prefer.
func (t *Terminal) Conflict(context.Context, Conflict) (Choice, error) {
	return ChoiceCancel, ErrHeadless
}

func (t *Terminal) ProgressStart(op string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.op, t.started, t.drawn = op, time.Now(), 0
}

func (t *Terminal) ProgressUpdate(p Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.started.IsZero() || now.Sub(t.started) < t.Delay || now.Sub(t.lastDraw) < 100*time.Millisecond {
		return
	}
	t.lastDraw = now
	s := Bar(p, t.Width)
	if t.color {
		fmt.Fprint(t.w, "\r"+s+ansiErase)
	} else {
		pad := ""
		if t.drawn > len(s) {
			pad = strings.Repeat(" ", t.drawn-len(s))
		}
		fmt.Fprint(t.w, "\r"+s+pad)
	}
	t.drawn = len(s)
}

// ProgressDone leaves the last bar on screen and ends its line, so the
// terminal's scrollback shows how far the operation got.
func (t *Terminal) ProgressDone() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.drawn > 0 {
		fmt.Fprint(t.w, "\n")
	}
	t.drawn, t.started = 0, time.Time{}
}

// Cancelled is never closed: Ctrl-C reaches the process as a signal.
func (t *Terminal) Cancelled() <-chan struct{} { return nil }

// Bar renders progress as one line of at most width columns:
// "push [#####.....]  45%  12.0 MiB / 27.0 MiB  1m5s left  saves/x.mca".
func Bar(p Progress, width int) string {
	const cells = 20
	pct := min(max(p.Percent, 0), 100)
	full := int(pct / 100 * cells)
	s := fmt.Sprintf("%s [%s%s] %3.0f%%  %s / %s", p.Op, strings.Repeat("#", full), strings.Repeat(".", cells-full), pct,
		HumanBytes(p.BytesDone), HumanBytes(p.BytesTotal))
	if p.ETA > 0 {
		s += fmt.Sprintf("  %s left", p.ETA.Round(time.Second))
	}
	if p.CurrentFile != "" {
		s += "  " + p.CurrentFile
	}
	if width > 0 && len(s) > width-1 {
		// Leave the last column free: writing into it makes some
		// terminals wrap, and the carriage return then redraws the wrong
		// line.
		s = s[:width-1]
	}
	return s
}

// Login prompts for the server, user and password on In, checks them, and
// offers the player's instances. Without In it returns ErrHeadless.
func (t *Terminal) Login(ctx context.Context, l Login) (Credentials, error) {
	if t.In == nil {
		return Credentials{}, ErrHeadless
	}
	if t.in == nil {
		t.in = bufio.NewReader(t.In)
	}
	return runLogin(ctx, t, l)
}

func (t *Terminal) askURL(_ context.Context, def string) (string, error) {
	server, err := t.ask(fmt.Sprintf("Server URL [%s]: ", def))
	if server == "" {
		server = def
	}
	return server, err
}

func (t *Terminal) askAccount(context.Context, string) (string, string, error) {
	user, err := t.ask("User: ")
	if err != nil {
		return "", "", err
	}
	t.say("Password: ")
	var pw string
	if t.ReadPassword != nil {
		pw, err = t.ReadPassword()
		t.say("\n")
	} else {
		pw, err = t.readLine()
	}
	return user, pw, err
}

func (t *Terminal) refused(_ context.Context, err error) error {
	t.say(fmt.Sprintf("%v; try again\n", err))
	return nil
}

func (t *Terminal) pick(ctx context.Context, l Login, c Credentials) (string, error) {
	list, ok := l.Instances(ctx, c)
	if !ok || len(list) == 0 {
		return t.ask("Instance id to join (from \"instance-sync status\" on your other computer), or Enter for a new instance: ")
	}
	t.say("Your instances in the cloud:\n")
	for i, in := range list {
		t.say(fmt.Sprintf("  %d) %s\n", i+1, InstanceLine(in)))
	}
	for {
		ans, err := t.ask("Join which one? number, or Enter for a new instance: ")
		if err != nil || ans == "" {
			return "", err
		}
		var n int
		if _, err := fmt.Sscanf(ans, "%d", &n); err == nil && n >= 1 && n <= len(list) {
			return list[n-1].ID, nil
		}
		t.say("please answer with one of the numbers\n")
	}
}

// InstanceLine describes one of the player's instances for a picker.
func InstanceLine(in Instance) string {
	s := in.Label
	if s == "" {
		s = in.ID
	}
	s += "  (" + in.ID
	if in.Host != "" {
		s += ", last played on " + in.Host
	}
	if !in.LastPush.IsZero() {
		s += " " + in.LastPush.Local().Format(time.DateTime)
	}
	if in.Size > 0 {
		s += ", " + HumanBytes(in.Size)
	}
	return s + ")"
}

func (t *Terminal) say(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clearBar()
	fmt.Fprint(t.w, s)
}

func (t *Terminal) ask(q string) (string, error) {
	t.say(q)
	return t.readLine()
}

// readLine returns one answer; end of input is ErrCancelled, so a closed
// terminal cannot loop on empty answers.
func (t *Terminal) readLine() (string, error) {
	line, err := t.in.ReadString('\n')
	if errors.Is(err, io.EOF) && line == "" {
		return "", ErrCancelled
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
