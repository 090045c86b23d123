package ui

import (
	"encoding/json"
	"time"
)

// Event is one --json event: StartEvent, DecisionEvent, ConflictEvent,
// ProgressEvent, WarningEvent, DoneEvent or ErrorEvent. Each is written as
// one JSON object with "type" (EventType) and "time" added; the field
// names are the README's "--json events" table and stable (TestEventJSON
// pins them).
type Event interface {
	EventType() string
}

// StartEvent opens a pull or push of an opted-in instance.
type StartEvent struct {
	Op       string `json:"op"`       // pull, push
	Instance string `json:"instance"` // the instance id
	Label    string `json:"label"`
}

// DecisionEvent is the pull's plan (history.Action's names).
type DecisionEvent struct {
	Action string `json:"action"` // nothing, local-ahead, fast-forward, resume, conflict
	Target string `json:"target"` // snapshot id or ""
	Reason string `json:"reason"`
}

// ConflictEvent states both sides of a conflict before the player (or the
// program) chooses.
type ConflictEvent struct {
	Reason   string   `json:"reason"`
	Heads    []string `json:"heads"`    // snapshot ids
	Instance string   `json:"instance"` // the instance's label
	Local    Side     `json:"local"`
	Cloud    []Side   `json:"cloud"` // newest first
}

// ProgressEvent is a restic run's progress, at most one a second.
type ProgressEvent struct {
	Op          string  `json:"op"`
	Percent     float64 `json:"percent"` // 0-100
	BytesDone   int64   `json:"bytes_done"`
	BytesTotal  int64   `json:"bytes_total"`
	FilesDone   int64   `json:"files_done"`
	FilesTotal  int64   `json:"files_total"`
	ETASeconds  int64   `json:"eta_seconds"`
	CurrentFile string  `json:"current_file"`
}

// WarningEvent is a warning that did not stop the command.
type WarningEvent struct {
	Message string `json:"message"`
}

// DoneEvent ends a sync that did something or decided to do nothing.
type DoneEvent struct {
	Action   string `json:"action"` // the engine's Result.Action
	Snapshot string `json:"snapshot"`
	Message  string `json:"message"`
	// Safety is the safety snapshot a restore took first, if any.
	Safety string `json:"safety,omitempty"`
}

// ErrorEvent is the command's failure: the one line it prints on
// standard error, and its exit code.
type ErrorEvent struct {
	Message   string `json:"message"`
	ExitCode  int    `json:"exit_code,omitempty"` // absent on UI.Error lines
	Cancelled bool   `json:"cancelled,omitempty"` // the player cancelled
}

func (StartEvent) EventType() string    { return "start" }
func (DecisionEvent) EventType() string { return "decision" }
func (ConflictEvent) EventType() string { return "conflict" }
func (ProgressEvent) EventType() string { return "progress" }
func (WarningEvent) EventType() string  { return "warning" }
func (DoneEvent) EventType() string     { return "done" }
func (ErrorEvent) EventType() string    { return "error" }

// progressEvent is p as the --json event.
func progressEvent(p Progress) ProgressEvent {
	return ProgressEvent{Op: p.Op, Percent: p.Percent, BytesDone: p.BytesDone, BytesTotal: p.BytesTotal,
		FilesDone: p.FilesDone, FilesTotal: p.FilesTotal, ETASeconds: int64(p.ETA.Seconds()), CurrentFile: p.CurrentFile}
}

// MarshalEvent is e as one JSON object: its fields plus "type" and
// "time" (RFC 3339, UTC), keys in sorted order.
func MarshalEvent(e Event, now time.Time) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	obj["type"], _ = json.Marshal(e.EventType())
	obj["time"], _ = json.Marshal(now.UTC().Format(time.RFC3339Nano))
	return json.Marshal(obj)
}
