package ui

import (
	"context"
	"io"
	"sync"
	"time"
)

// JSON writes one event object per line to w (stdout under --json) and
// human text to Human (stderr). Every object has "type" and "time" (RFC
// 3339, UTC); the other field names are stable and listed in
// README-section.md. Questions (conflict, login) go to Human, so a program
// that wants no dialogs passes --no-gui and gets exit code 3 to act on.
type JSON struct {
	mu    sync.Mutex
	w     io.Writer
	Human UI
	last  time.Time
}

// NewJSON writes events to w and human lines through human.
func NewJSON(w io.Writer, human UI) *JSON { return &JSON{w: w, Human: human} }

func (j *JSON) emit(e Event) {
	b, err := MarshalEvent(e, time.Now())
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.Write(append(b, '\n'))
}

func (j *JSON) Info(msg string) { j.Human.Info(msg) }
func (j *JSON) Warn(msg string) {
	j.Human.Warn(msg)
	j.emit(WarningEvent{Message: msg})
}
func (j *JSON) Error(msg string) {
	j.Human.Error(msg)
	j.emit(ErrorEvent{Message: msg})
}

// Event writes e and hands it to Human too: the dialog UI shows "error"
// events.
func (j *JSON) Event(e Event) {
	j.emit(e)
	j.Human.Event(e)
}

func (j *JSON) Conflict(ctx context.Context, c Conflict) (Choice, error) {
	return j.Human.Conflict(ctx, c)
}

func (j *JSON) Login(ctx context.Context, l Login) (Credentials, error) {
	return j.Human.Login(ctx, l)
}

func (j *JSON) ProgressStart(op string) { j.Human.ProgressStart(op) }
func (j *JSON) ProgressUpdate(p Progress) {
	j.Human.ProgressUpdate(p)
	j.mu.Lock()
	due := time.Since(j.last) >= time.Second
	if due {
		j.last = time.Now()
	}
	j.mu.Unlock()
	if due {
		j.emit(progressEvent(p))
	}
}
func (j *JSON) ProgressDone()              { j.Human.ProgressDone() }
func (j *JSON) Cancelled() <-chan struct{} { return j.Human.Cancelled() }
