package ui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Plain writes one line per message, for launcher logs and terminals. It
// cannot ask anything: Conflict and Login return ErrHeadless.
type Plain struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	// progress lines are rate-limited: a launcher log is no place for
	// restic's two updates a second.
	lastProgress time.Time
	started      time.Time
	op           string
}

// NewPlain writes to w with the "instance-sync: " prefix.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w, prefix: "instance-sync: "} }

func (p *Plain) line(kind, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg = strings.TrimRight(msg, "\n")
	if msg == "" {
		return
	}
	fmt.Fprintf(p.w, "%s%s%s\n", p.prefix, kind, msg)
}

func (p *Plain) Info(msg string)  { p.line("", msg) }
func (p *Plain) Warn(msg string)  { p.line("warning: ", msg) }
func (p *Plain) Error(msg string) { p.line("error: ", msg) }
func (p *Plain) Event(Event)      {}

func (p *Plain) Conflict(context.Context, Conflict) (Choice, error) {
	return ChoiceCancel, ErrHeadless
}

func (p *Plain) Login(context.Context, Login) (Credentials, error) {
	return Credentials{}, ErrHeadless
}

func (p *Plain) ProgressStart(op string) {
	p.mu.Lock()
	p.op, p.started, p.lastProgress = op, time.Now(), time.Now()
	p.mu.Unlock()
}

func (p *Plain) ProgressUpdate(pr Progress) {
	p.mu.Lock()
	due := time.Since(p.lastProgress) >= 5*time.Second
	if due {
		p.lastProgress = time.Now()
	}
	p.mu.Unlock()
	if due {
		p.line("", FormatProgress(pr))
	}
}

func (p *Plain) ProgressDone()              {}
func (p *Plain) Cancelled() <-chan struct{} { return nil }

// FormatProgress renders progress as one line.
func FormatProgress(pr Progress) string {
	s := fmt.Sprintf("%s %3.0f%% %s / %s", pr.Op, pr.Percent, HumanBytes(pr.BytesDone), HumanBytes(pr.BytesTotal))
	if pr.ETA > 0 {
		s += fmt.Sprintf(", %s left", pr.ETA.Round(time.Second))
	}
	return s
}

// HumanBytes renders n bytes as "1.5 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
