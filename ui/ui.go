// Package ui is the seam between the sync engine and whoever talks to the
// player: native dialogs, a terminal, a launcher's log or a program reading
// JSON events. The engine only ever calls the UI interface.
package ui

import (
	"context"
	"errors"
	"time"
)

// ErrCancelled is returned by UI calls when the player closed or cancelled a
// dialog. The engine turns it into exit code 3.
var ErrCancelled = errors.New("cancelled by the player")

// Choice is the player's answer to a conflict.
type Choice int

const (
	// ChoiceCancel cancels the launch; nothing changes.
	ChoiceCancel Choice = iota
	// ChoiceCloud takes a safety snapshot of the local files, then restores
	// the chosen cloud head.
	ChoiceCloud
	// ChoiceLocal keeps the local files; the next push names the skipped
	// head(s) as bases.
	ChoiceLocal
)

func (c Choice) String() string {
	switch c {
	case ChoiceCloud:
		return "cloud"
	case ChoiceLocal:
		return "local"
	default:
		return "cancel"
	}
}

// Side describes one version of the instance in a conflict.
// The JSON names are part of the --json "conflict" event and stable.
type Side struct {
	SnapshotID string    `json:"snapshot,omitempty"` // empty for the local side
	Host       string    `json:"host"`               // where it was last played
	Label      string    `json:"label,omitempty"`    // instance label recorded with it
	Time       time.Time `json:"time"`               // when it was last played or pushed
	Size       int64     `json:"bytes"`              // bytes of the files that differ
	Files      int       `json:"files"`              // number of files that differ
	Worlds     []string  `json:"worlds,omitempty"`   // worlds (saves/<name>) that differ
}

// Conflict is what the player needs to choose between local and cloud.
type Conflict struct {
	Instance string // label of the instance
	Local    Side
	Cloud    []Side // one per head, newest first
	// Merges: the sides are only the worlds changed on both; everything
	// else merges whatever the choice.
	Merges bool
}

// ErrBadCredentials is what Login.Check wraps when the server refused the
// user or password: the UI asks for them again rather than for the URL.
var ErrBadCredentials = errors.New("wrong user or password")

// Login asks for the server account during setup.
type Login struct {
	URL  string
	User string
	// Check validates the credentials against the server before the dialog
	// closes. It returns a message to show when they are wrong.
	Check func(ctx context.Context, url, user, password string) error
	// Instances lists the player's instances on the server once the
	// credentials are good, for the picker; ok is false when the server
	// does not list them (a plain rest-server), and the UI asks for an id.
	// Nil skips the picker.
	Instances func(ctx context.Context, c Credentials) (list []Instance, ok bool)
}

// Credentials are the answer to a Login.
type Credentials struct {
	URL, User, Password string
	// Join is the instance to continue, "" for a new instance.
	Join string
}

// Instance is one of the player's instances as the server lists it.
type Instance struct {
	ID       string
	Label    string
	Host     string
	LastPush time.Time
	Size     int64
}

// Progress of a long operation.
type Progress struct {
	Op          string // "pull", "push", "download"
	Percent     float64
	BytesDone   int64
	BytesTotal  int64
	FilesDone   int64
	FilesTotal  int64
	ETA         time.Duration
	CurrentFile string
}

// UI is everything the engine asks of the player or tells them.
type UI interface {
	// Info reports a line of progress or outcome.
	Info(msg string)
	// Warn reports something the player should know but that does not stop
	// the operation.
	Warn(msg string)
	// Error reports the one-line failure and what to do about it.
	Error(msg string)
	// Event records a structured event; only JSON output shows them.
	Event(e Event)
	// Conflict asks which side to keep. Headless implementations return
	// ChoiceCancel with ErrHeadless.
	Conflict(ctx context.Context, c Conflict) (Choice, error)
	// Login asks for credentials.
	Login(ctx context.Context, l Login) (Credentials, error)
	// ProgressStart begins showing progress of op; ProgressUpdate updates it
	// and ProgressDone ends it. Cancelled reports whether the player asked to
	// cancel it.
	ProgressStart(op string)
	ProgressUpdate(p Progress)
	ProgressDone()
	Cancelled() <-chan struct{}
}

// ErrHeadless means the UI cannot ask the player anything.
var ErrHeadless = errors.New("no way to ask the player (headless)")
