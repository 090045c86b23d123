// Package engine keeps a Minecraft launcher instance's player data in
// sync across computers through restic snapshots on a rest-server. This is
// the programmatic API; cmd/instance-sync is a thin CLI over it.
//
// Every operation takes an Options value naming the pack folder and how to
// reach the player; nothing is read from flags or global state.
package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// Options are shared by every operation.
type Options struct {
	PackFolder   string // the instance's game folder; required
	TokenFile    string // default UserDirs.TokenFile: outside the pack folder
	ResticBinary string // --restic-binary
	NoDownload   bool   // never download restic
	Label        string // instance label shown to the player and stored with snapshots
	InsecureHTTP bool   // allow plain http to a non-loopback server

	// Prefer resolves a conflict without asking: "local" or "cloud".
	Prefer string
	// PreferWorlds resolves a world's collision without asking (world
	// name → "local" or "cloud"), before Prefer.
	PreferWorlds map[string]string
	// Snapshot picks the head to restore with Prefer "cloud" when there are
	// several (an id or unique prefix).
	Snapshot string
	// OfflineFail makes a pull that cannot reach the server fail instead of
	// warning and letting the game start (and the command line's hooks fail
	// with exit 4 when the server refuses the login).
	OfflineFail bool

	UI       ui.UI     // default: plain lines on Stderr
	Stderr   io.Writer // restic's own messages; default os.Stderr
	Hostname string    // default os.Hostname()
	Getenv   func(string) string
	// UserDirs hold the tokens, the cached master keys and this computer's
	// id; default instance.DefaultUserDirs through Getenv.
	UserDirs    instance.UserDirs
	userDirsErr error // why the default UserDirs could not be found

	// StartWatcher, when set, starts a change watcher for the pack folder
	// (package watch) after a pull; the next push asks it instead of
	// stat'ing every file. The command line sets it; nil starts none.
	StartWatcher func(pack string) error
	// NoWatcher: the push never asks a change watcher, even one that is
	// running; it checks every file (INSTANCE_SYNC_WATCH=0).
	NoWatcher bool
	// ResticRestore: every restore runs restic, even one of a few small
	// files that the pull would download itself (INSTANCE_SYNC_DIRECT=0).
	ResticRestore bool

	// Fault, when set, is called at the named points of a restore
	// ("seeded", "restored", "staged", "moved:N" after the Nth file is in place):
	// tests kill the process there. Nil in normal use.
	Fault func(point string)

	// HTTPTimeout bounds each request to the server (default 10s).
	HTTPTimeout time.Duration
	// ResticStall ends a restic backup or restore that made no progress for
	// this long (default 2 minutes); ResticTimeout bounds other restic runs
	// (default 2 minutes).
	ResticStall   time.Duration
	ResticTimeout time.Duration
}

// Result says what an operation did.
type Result struct {
	Action   Action
	Snapshot string // the snapshot synced with, when there is one
	Message  string
}

// Action is what a sync did: Result.Action, and the "action" of the --json
// done event (README, "--json events").
type Action string

// The actions. A pull's fast-forward and resume take history.Action's
// names.
const (
	ActionNotOptedIn  Action = "not-opted-in" // no sync.json: nothing said, nothing done
	ActionOffline     Action = "offline"      // the server could not be reached; the pull let the game start
	ActionNothing     Action = "nothing"
	ActionLocalAhead  Action = "local-ahead"
	ActionFastForward Action = "fast-forward"
	ActionResume      Action = "resume"
	ActionNotRestored Action = "not-restored" // the restore failed and changed nothing
	ActionKeptLocal   Action = "kept-local"
	ActionUsedCloud   Action = "used-cloud"
	ActionMerged      Action = "merged" // the cloud's changed worlds and files came in, this computer's stayed
	ActionPushed      Action = "pushed"
	ActionRestored    Action = "restored"
	ActionAuthFailed  Action = "auth-failed" // a hook went on without sync: the server refused the token
	ActionCopy        Action = "copy"        // a copied folder, not synced as the original (NotOriginalError)
)

// ConflictError is a conflict that was not resolved. Exit code 3.
type ConflictError struct {
	Reason string
	Heads  []history.Snapshot
	// PerWorld: the conflict is about the worlds in Reason alone (the
	// rest merges), and each can be chosen on its own.
	PerWorld bool
}

func (e *ConflictError) Error() string {
	if e.PerWorld {
		return fmt.Sprintf("conflict: %s; nothing was changed. Choose with \"instance-sync pull --prefer=cloud\" (safety snapshot of this computer's files, then the cloud's version of these worlds) or \"--prefer=local\" (keep this computer's), or per world with --prefer=cloud:NAME or --prefer=local:NAME; everything else merges either way", e.Reason)
	}
	return fmt.Sprintf("conflict: %s; nothing was changed. Choose with \"instance-sync pull --prefer=cloud\" (safety snapshot of this computer's files, then the cloud version) or \"--prefer=local\" (keep this computer's files)", e.Reason)
}

// ErrCancelled means the player cancelled (the launch, a dialog, a
// progress window). Exit code 3. It is ui.ErrCancelled: one value whether
// the UI or the engine noticed.
var ErrCancelled = ui.ErrCancelled

func (o *Options) defaults() error {
	if o.PackFolder == "" {
		return errors.New("no pack folder: pass --pack-folder or run from the launcher (which sets $INST_MC_DIR)")
	}
	abs, err := filepath.Abs(o.PackFolder)
	if err != nil {
		return err
	}
	o.PackFolder = abs
	if o.UI == nil {
		o.UI = ui.NewPlain(os.Stderr)
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "unknown"
		}
		o.Hostname = h
	}
	if o.UserDirs.Config == "" || o.UserDirs.Cache == "" {
		// An error matters only to an opted-in instance (needUserDirs): a
		// hook on a folder that is not opted in stays silent.
		o.UserDirs, o.userDirsErr = instance.DefaultUserDirs(o.Getenv, runtime.GOOS)
	}
	if o.ResticStall == 0 {
		o.ResticStall = 2 * time.Minute
	}
	if o.ResticTimeout == 0 {
		o.ResticTimeout = 2 * time.Minute
	}
	return nil
}

// Label picks the instance label: the flag, then $INST_NAME, then $INST_ID,
// then the label given at init, then the first 8 characters of the
// instance id.
func Label(flag string, getenv func(string) string, saved, instanceID string) string {
	if flag != "" {
		return flag
	}
	for _, k := range []string{"INST_NAME", "INST_ID"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	if saved != "" {
		return saved
	}
	if len(instanceID) > 8 {
		return instanceID[:8]
	}
	return instanceID
}
