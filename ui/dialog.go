package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Button is the answer to a Question dialog.
type Button int

const (
	// ButtonCancel is the cancel button, Escape or closing the window.
	ButtonCancel Button = iota
	// ButtonOK is the default button.
	ButtonOK
	// ButtonExtra is the third button.
	ButtonExtra
)

// MessageKind is the icon of a message dialog.
type MessageKind int

const (
	MessageInfo MessageKind = iota
	MessageWarning
	MessageError
)

// Toolkit is the native dialog layer Dialogs draws with. NativeToolkit
// shows real windows; tests plug in a fake. Every call blocks until the
// player answers; cancelling (Cancel, Escape, closing the window) returns
// ErrCancelled, never a zero value that could pass for an answer.
type Toolkit interface {
	// Question shows text with an OK button, an optional extra button
	// (extra == "" for none) and a cancel button.
	Question(ctx context.Context, title, text, ok, extra, cancel string) (Button, error)
	// Entry asks for one line of text, prefilled with value.
	Entry(ctx context.Context, title, text, value string) (string, error)
	// Password asks for a user name and a hidden password.
	Password(ctx context.Context, title string) (user, password string, err error)
	// List asks to pick one of items and returns its index.
	List(ctx context.Context, title, text string, items []string) (int, error)
	// Message shows text until the player closes it.
	Message(ctx context.Context, kind MessageKind, title, text string) error
	// Progress opens a progress window with a cancel button.
	Progress(ctx context.Context, title string) (ProgressWindow, error)
}

// ProgressWindow is an open progress dialog.
type ProgressWindow interface {
	// Update sets the bar (0–100) and the lines of text under it.
	Update(percent float64, lines []string) error
	// Close takes the window away; Done is closed afterwards.
	Close() error
	// Done is closed when the window is gone: closed by us, or cancelled
	// by the player.
	Done() <-chan struct{}
}

// Dialogs shows native dialogs for what needs the player (login,
// conflicts, errors in hook mode) and a progress window for long
// operations. Lines (Info, Warn) also go to Log, the launcher's log.
type Dialogs struct {
	tk  Toolkit
	Log UI
	// Title is every window's title.
	Title string
	// Delay is how long an operation runs before its progress window
	// opens: quick syncs should not flash a window at every launch.
	Delay time.Duration

	mu      sync.Mutex
	gen     int // counts progress operations, so a late timer opens nothing
	timer   *time.Timer
	win     ProgressWindow
	closing bool
	op      string
	last    Progress
	once    sync.Once
	cancel  chan struct{}
}

// NewDialogs draws with tk and logs lines through log.
func NewDialogs(tk Toolkit, log UI) *Dialogs {
	return &Dialogs{tk: tk, Log: log, Title: "instance-sync", Delay: time.Second, cancel: make(chan struct{})}
}

func (d *Dialogs) Info(msg string) { d.Log.Info(msg) }
func (d *Dialogs) Warn(msg string) { d.Log.Warn(msg) }

// Error shows msg in a dialog (and the log): in hook mode the launcher's
// log is the last place a player looks.
func (d *Dialogs) Error(msg string) {
	d.Log.Error(msg)
	d.showError("instance-sync: something went wrong", msg)
}

func (d *Dialogs) showError(title, msg string) {
	d.closeProgress()
	_ = d.tk.Message(context.Background(), MessageError, title, Sentence(msg))
}

// Event shows "error" events (the command failed) in a dialog, except a
// cancellation the player chose themselves.
func (d *Dialogs) Event(e Event) {
	d.Log.Event(e)
	if ev, ok := e.(ErrorEvent); ok && !ev.Cancelled && ev.Message != "" {
		d.showError("instance-sync", ev.Message)
	}
}

// Sentence turns a one-line error ("x: y; run z") into dialog text: the
// first letter capitalised and the fix on its own line.
func Sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if i := strings.LastIndex(msg, "; "); i > 0 {
		fix := msg[i+2:]
		msg = msg[:i] + ".\n\n" + strings.ToUpper(fix[:1]) + fix[1:]
	}
	return msg + "."
}

// Conflict asks which version to keep: Use cloud, Keep local or Cancel
// launch. Closing the window cancels the launch.
func (d *Dialogs) Conflict(ctx context.Context, c Conflict) (Choice, error) {
	d.closeProgress()
	title := d.Title + ": choose a version"
	if w := conflictWorlds(c); c.Merges && len(w) == 1 {
		// One dialog per colliding world: the title says which.
		title += " of " + w[0]
	}
	b, err := d.tk.Question(ctx, title, ConflictText(c), "Use cloud", "Keep local", "Cancel launch")
	if errors.Is(err, ErrCancelled) {
		return ChoiceCancel, ErrCancelled
	}
	if err != nil {
		// The dialog could not be shown: answer as a headless UI would, so
		// the engine logs the facts and names --prefer.
		d.Log.Warn(fmt.Sprintf("cannot show the conflict dialog: %v", err))
		return ChoiceCancel, ErrHeadless
	}
	switch b {
	case ButtonOK:
		return ChoiceCloud, nil
	case ButtonExtra:
		return ChoiceLocal, nil
	}
	return ChoiceCancel, ErrCancelled
}

// conflictWorlds are the worlds the sides of c name, each once.
func conflictWorlds(c Conflict) []string {
	var out []string
	for _, s := range append([]Side{c.Local}, c.Cloud...) {
		for _, w := range s.Worlds {
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

// ConflictText is the conflict dialog's text.
func ConflictText(c Conflict) string {
	var b strings.Builder
	name := c.Instance
	if name == "" {
		name = "This instance"
	}
	fmt.Fprintf(&b, "%s was played on this computer and on another one since they last synced.\n\n", name)
	for _, l := range DescribeConflict(c) {
		if strings.HasPrefix(l, "nothing is lost") {
			continue // said below with the button names
		}
		b.WriteString("• " + l + "\n")
	}
	b.WriteString("\nNothing is lost either way:\n")
	if c.Merges {
		b.WriteString("Use cloud: plays the cloud's version of these worlds; this computer's files are kept first as a safety snapshot.\n")
		b.WriteString("Keep local: plays this computer's version of these worlds; the cloud's stays in history.\n")
		b.WriteString("Cancel launch: changes nothing.")
		return b.String()
	}
	b.WriteString("Use cloud: plays the cloud version")
	if len(c.Cloud) > 1 {
		b.WriteString(" (the newest one)")
	}
	b.WriteString("; this computer's files are kept first as a safety snapshot.\n")
	b.WriteString("Keep local: plays this computer's files; the cloud version stays in history.\n")
	b.WriteString("Cancel launch: changes nothing.")
	return b.String()
}

// AskRelogin tells the player the server refused this computer's login
// during a hook (op: pull or push) and asks whether to log in again (true)
// or to go on without sync this time (false, also when the dialog cannot
// be shown: the log says so). zenity's "cannot open display" exits like
// Cancel and reads as "play without sync".
func (d *Dialogs) AskRelogin(ctx context.Context, problem, op string) bool {
	d.closeProgress()
	skip := "Play without sync"
	text := Sentence(problem) + "\n\nThe server no longer accepts this computer's login (the password was changed, or the account was disabled).\nLog in again to sync now, or play with the files on this computer: they sync once you log in again."
	if op == "push" {
		skip = "Not now"
		text = Sentence(problem) + "\n\nThe server no longer accepts this computer's login (the password was changed, or the account was disabled).\nLog in again to upload your progress now; it is safe on this computer either way."
	}
	b, err := d.tk.Question(ctx, d.Title+": log in again", text, "Log in again", "", skip)
	if err != nil && !errors.Is(err, ErrCancelled) {
		d.Log.Warn(fmt.Sprintf("cannot show the log-in-again dialog: %v", err))
	}
	return err == nil && b == ButtonOK
}

// Login asks for a login with dialogs (see runLogin).
func (d *Dialogs) Login(ctx context.Context, l Login) (Credentials, error) {
	return runLogin(ctx, d, l)
}

func (d *Dialogs) askURL(ctx context.Context, def string) (string, error) {
	return d.tk.Entry(ctx, d.Title+": log in", "Server URL (from your community):", def)
}

func (d *Dialogs) askAccount(ctx context.Context, url string) (string, string, error) {
	return d.tk.Password(ctx, d.Title+": log in to "+url)
}

func (d *Dialogs) refused(ctx context.Context, err error) error {
	if merr := d.tk.Message(ctx, MessageError, d.Title+": log in", Sentence(err.Error()+"; try again")); merr != nil && !errors.Is(merr, ErrCancelled) {
		return merr
	}
	return nil
}

func (d *Dialogs) pick(ctx context.Context, l Login, c Credentials) (string, error) {
	list, ok := l.Instances(ctx, c)
	if !ok {
		id, err := d.tk.Entry(ctx, d.Title+": which instance",
			"Instance id, or empty for a new one:\nTo continue an instance you sync on another computer, paste its id\n(\"instance-sync status\" there prints it).\nLeave it empty to start a new one.", "")
		return strings.TrimSpace(id), err
	}
	if len(list) == 0 {
		return "", nil
	}
	items := []string{"New instance (start syncing this one)"}
	for _, in := range list {
		items = append(items, InstanceLine(in))
	}
	i, err := d.tk.List(ctx, d.Title+": which instance", "Continue an instance, or a new one:", items)
	if err != nil || i <= 0 || i > len(list) {
		return "", err
	}
	return list[i-1].ID, nil
}

// ProgressStart arms a timer: the window opens only if the operation is
// still running after Delay.
func (d *Dialogs) ProgressStart(op string) {
	d.Log.ProgressStart(op)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	gen := d.gen
	d.op, d.last = op, Progress{Op: op}
	if d.timer != nil {
		d.timer.Stop()
	}
	d.timer = time.AfterFunc(d.Delay, func() { d.open(gen) })
}

func (d *Dialogs) open(gen int) {
	d.mu.Lock()
	if gen != d.gen || d.win != nil || d.op == "" {
		d.mu.Unlock()
		return
	}
	title := d.Title + ": " + opTitle(d.op)
	last := d.last
	d.mu.Unlock()
	// Opening starts a process (zenity, osascript): not under the lock,
	// so progress updates keep flowing meanwhile.
	win, err := d.tk.Progress(context.Background(), title)
	if err != nil {
		d.Log.Warn(fmt.Sprintf("cannot show the progress window: %v", err))
		return
	}
	d.mu.Lock()
	if gen != d.gen || d.op == "" {
		d.mu.Unlock()
		_ = win.Close()
		return
	}
	d.win, d.closing = win, false
	d.mu.Unlock()
	_ = win.Update(last.Percent, ProgressLines(last))
	go func() {
		<-win.Done()
		d.mu.Lock()
		byPlayer := !d.closing && d.win == win
		if d.win == win {
			d.win = nil
		}
		d.mu.Unlock()
		if byPlayer {
			d.once.Do(func() { close(d.cancel) })
		}
	}()
}

func opTitle(op string) string {
	switch op {
	case "pull":
		return "getting your game from the cloud"
	case "push":
		return "saving your game to the cloud"
	case "download":
		return "downloading restic"
	case "":
		return "working"
	}
	return op
}

func (d *Dialogs) ProgressUpdate(p Progress) {
	d.Log.ProgressUpdate(p)
	d.mu.Lock()
	d.last = p
	win := d.win
	d.mu.Unlock()
	if win != nil {
		_ = win.Update(p.Percent, ProgressLines(p))
	}
}

// ProgressLines are the lines above the progress bar. The first names the
// operation, since some window managers show no title.
func ProgressLines(p Progress) []string {
	what := opTitle(p.Op)
	lines := []string{strings.ToUpper(what[:1]) + what[1:]}
	switch {
	case p.BytesTotal == 0 && p.Percent == 0:
		lines = append(lines, "starting…")
	case p.Percent >= 100:
		// restic counts bytes read; the upload of the last packs and the
		// snapshot comes after.
		fin := "finishing"
		if p.Op == "push" {
			fin = "finishing the upload"
		}
		lines = append(lines, fmt.Sprintf("%s · %s", HumanBytes(p.BytesTotal), fin))
	default:
		s := fmt.Sprintf("%.0f%% · %s of %s", p.Percent, HumanBytes(p.BytesDone), HumanBytes(p.BytesTotal))
		if p.ETA > 0 {
			s += fmt.Sprintf(" · about %s left", p.ETA.Round(time.Second))
		}
		lines = append(lines, s)
	}
	if p.CurrentFile != "" {
		lines = append(lines, p.CurrentFile)
	}
	return lines
}

func (d *Dialogs) ProgressDone() {
	d.Log.ProgressDone()
	d.closeProgress()
}

func (d *Dialogs) closeProgress() {
	d.mu.Lock()
	d.gen++
	d.op = ""
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	win := d.win
	d.win, d.closing = nil, true
	d.mu.Unlock()
	if win != nil {
		_ = win.Close()
	}
}

// Cancelled is closed once the player cancels a progress window; the
// command line then cancels the operation's context, which interrupts
// restic.
func (d *Dialogs) Cancelled() <-chan struct{} { return d.cancel }

// Notify shows msg in an information dialog (and the log), for outcomes
// the player waits to see, such as the end of setup.
func (d *Dialogs) Notify(msg string) {
	d.Log.Info(msg)
	_ = d.tk.Message(context.Background(), MessageInfo, d.Title, Sentence(msg))
}
