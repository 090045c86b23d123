package ui

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ncruces/zenity"
)

// NativeToolkit shows real dialogs through github.com/ncruces/zenity:
// Win32 on Windows, osascript on macOS, zenity or qarma on Linux. No cgo.
func NativeToolkit() Toolkit { return native{} }

type native struct{}

func (native) opts(ctx context.Context, title string, more ...zenity.Option) []zenity.Option {
	o := []zenity.Option{zenity.Title(title), zenity.Context(ctx)}
	return append(o, more...)
}

// answer maps zenity's cancel to ours; everything else is a real failure
// (the helper crashed, no display after all).
func answer(err error) error {
	if errors.Is(err, zenity.ErrCanceled) {
		return ErrCancelled
	}
	return err
}

func (n native) Question(ctx context.Context, title, text, ok, extra, cancel string) (Button, error) {
	more := []zenity.Option{zenity.OKLabel(ok), zenity.CancelLabel(cancel), zenity.QuestionIcon, zenity.NoWrap()}
	if extra != "" {
		more = append(more, zenity.ExtraButton(extra))
	}
	err := zenity.Question(text, n.opts(ctx, title, more...)...)
	switch {
	case err == nil:
		return ButtonOK, nil
	case errors.Is(err, zenity.ErrExtraButton):
		return ButtonExtra, nil
	}
	return ButtonCancel, answer(err)
}

func (n native) Entry(ctx context.Context, title, text, value string) (string, error) {
	if runtime.GOOS == "windows" {
		text = windowsLabel(text)
	}
	s, err := zenity.Entry(text, n.opts(ctx, title, zenity.EntryText(value), zenity.Width(460))...)
	return s, answer(err)
}

func (n native) Password(ctx context.Context, title string) (string, string, error) {
	u, p, err := zenity.Password(n.opts(ctx, title, zenity.Username())...)
	return u, p, answer(err)
}

func (n native) List(ctx context.Context, title, text string, items []string) (int, error) {
	if runtime.GOOS == "windows" {
		text = windowsLabel(text)
	}
	s, err := zenity.List(text, items, n.opts(ctx, title, zenity.Width(560), zenity.Height(320), zenity.DisallowEmpty())...)
	if err != nil {
		return -1, answer(err)
	}
	for i, it := range items {
		if it == s {
			return i, nil
		}
	}
	return -1, ErrCancelled
}

func (n native) Message(ctx context.Context, kind MessageKind, title, text string) error {
	var f func(string, ...zenity.Option) error
	var icon zenity.DialogIcon
	switch kind {
	case MessageError:
		f, icon = zenity.Error, zenity.ErrorIcon
	case MessageWarning:
		f, icon = zenity.Warning, zenity.WarningIcon
	default:
		f, icon = zenity.Info, zenity.InfoIcon
	}
	return answer(f(text, n.opts(ctx, title, icon, zenity.Width(460))...))
}

func (n native) Progress(ctx context.Context, title string) (ProgressWindow, error) {
	dlg, err := openProgress(ctx, title)
	if err != nil {
		return nil, err
	}
	p := &nativeProgress{n: n, ctx: ctx, title: title, d: dlg, done: make(chan struct{})}
	go p.watch()
	return p, nil
}

func openProgress(ctx context.Context, title string) (zenity.ProgressDialog, error) {
	return zenity.Progress(native{}.opts(ctx, title, zenity.MaxValue(1000), zenity.Width(460), zenity.CancelLabel("Cancel"))...)
}

// nativeProgress is a progress window. On Windows, Enter presses the
// dialog's OK button (disabled until the end, but the key still reaches
// it), which closes the window just as Cancel does and cannot be told
// from it; so a window closed by the player there asks first, and
// "Continue" opens it again.
type nativeProgress struct {
	n     native
	ctx   context.Context
	title string
	done  chan struct{}

	mu      sync.Mutex
	d       zenity.ProgressDialog
	closed  bool // by Close
	percent float64
	lines   []string
}

func (p *nativeProgress) Update(percent float64, lines []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.percent, p.lines = percent, lines
	return p.show()
}

// show puts the last figures in the window; p.mu is held.
func (p *nativeProgress) show() error {
	// zenity's progress text is one line of its stdin protocol, where it
	// turns the two characters \n into a line break; the Windows and
	// macOS dialogs take the text as it is.
	sep := "\n"
	if runtime.GOOS != "windows" && runtime.GOOS != "darwin" {
		sep = `\n`
	}
	text := strings.Join(p.lines, sep)
	if runtime.GOOS == "windows" {
		text = windowsProgressText(p.lines)
	}
	if err := p.d.Text(text); err != nil {
		return err
	}
	return p.d.Value(int(min(max(p.percent, 0), 100) * 10))
}

// watch closes done when the window is gone for good: closed by Close,
// or by the player (on Windows: who then chose to stop).
func (p *nativeProgress) watch() {
	defer close(p.done)
	for {
		p.mu.Lock()
		d := p.d
		p.mu.Unlock()
		<-d.Done()
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed || runtime.GOOS != "windows" {
			return
		}
		b, err := p.n.Question(p.ctx, p.title, "Stop this sync? Nothing is lost either way.", "Continue", "", "Stop")
		if err != nil && !errors.Is(err, ErrCancelled) || b != ButtonOK {
			return
		}
		nd, err := openProgress(p.ctx, p.title)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.d = nd
		if p.closed {
			p.mu.Unlock()
			_ = nd.Close()
			return
		}
		_ = p.show()
		p.mu.Unlock()
	}
}

func (p *nativeProgress) Close() error {
	p.mu.Lock()
	p.closed = true
	d := p.d
	p.mu.Unlock()
	return d.Close()
}

func (p *nativeProgress) Done() <-chan struct{} { return p.done }

// windowsLabelRunes is about what the one-line label of the Win32 entry,
// list and progress dialogs shows (241 dialog units at the system font);
// longer text is cut off with an ellipsis.
const windowsLabelRunes = 40

// windowsLabel is the label the Win32 entry and list dialogs show: their
// label is one short line, so only the text's first line, which the
// dialogs keep short (the lines after it explain, where there is room).
func windowsLabel(text string) string {
	first, _, _ := strings.Cut(text, "\n")
	return first
}

// windowsProgressText is the one line the Win32 progress dialog has room
// for: the figures (the title names the operation), without the parts
// that do not fit.
func windowsProgressText(lines []string) string {
	if len(lines) < 2 {
		return strings.Join(lines, " ")
	}
	parts := strings.Split(lines[1], " · ")
	text := parts[0]
	for _, p := range parts[1:] {
		if utf8.RuneCountInString(text+" · "+p) > windowsLabelRunes {
			break
		}
		text += " · " + p
	}
	return text
}
