package ui

import (
	"context"
	"encoding/json"
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

func (j *JSON) emit(typ string, data map[string]any) {
	obj := map[string]any{"type": typ, "time": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range data {
		obj[k] = v
	}
	b, err := json.Marshal(obj)
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
	j.emit("warning", map[string]any{"message": msg})
}
func (j *JSON) Error(msg string) {
	j.Human.Error(msg)
	j.emit("error", map[string]any{"message": msg})
}

// Event writes e and hands it to Human too: the dialog UI shows "error"
// events.
func (j *JSON) Event(e Event) {
	j.emit(e.Type, e.Data)
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
		j.emit("progress", map[string]any{"op": p.Op, "percent": p.Percent, "bytes_done": p.BytesDone,
			"bytes_total": p.BytesTotal, "files_done": p.FilesDone, "files_total": p.FilesTotal,
			"eta_seconds": int64(p.ETA.Seconds()), "current_file": p.CurrentFile})
	}
}
func (j *JSON) ProgressDone()              { j.Human.ProgressDone() }
func (j *JSON) Cancelled() <-chan struct{} { return j.Human.Cancelled() }
