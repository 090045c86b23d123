package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/internal/atomicfile"
	"git.timemachine.center/timemachine/instance-sync/scope"
)

// StateVersion is the state.json version this build reads and writes.
const StateVersion = 1

// State is what this machine knows about its sync history.
type State struct {
	Version int `json:"version"`
	// Last is the snapshot the local files were last synced with: the base
	// of the next push.
	Last string `json:"last_snapshot,omitempty"`
	// Skipped are heads the player chose not to play (keep local); the next
	// push names them as bases so they stop being heads.
	Skipped []string `json:"skipped_heads,omitempty"`
	// Known caches the metadata of every snapshot seen, so each is
	// decrypted once.
	Known map[string]history.Snapshot `json:"known,omitempty"`
	// Manifest is the scope as it was right after the last sync; nil when
	// this machine never synced.
	Manifest scope.Manifest `json:"manifest"`
	// Restoring marks a restore in progress: a run that finds it finishes
	// that restore first.
	Restoring string `json:"restoring,omitempty"`
	// PendingPush is the attempt id of a push that started and has not been
	// recorded; a snapshot carrying it is this machine's own.
	PendingPush string `json:"pending_push,omitempty"`
	// LastSync is when the last pull or push finished.
	LastSync time.Time `json:"last_sync,omitempty"`
}

// ParseState parses state.json content.
func ParseState(data []byte) (State, error) {
	var s State
	if err := strictUnmarshal(data, &s); err != nil {
		return State{}, err
	}
	if s.Version != StateVersion {
		return State{}, fmt.Errorf("unknown version %d (this build reads version %d)", s.Version, StateVersion)
	}
	for id, k := range s.Known {
		if k.ID != id {
			return State{}, fmt.Errorf("snapshot cache entry %.12s names snapshot %.12s", id, k.ID)
		}
	}
	return s, nil
}

// LoadState reads state.json; a missing one is an empty state (a machine
// that never synced). A corrupt one is an error, never a silent reset.
func (p Paths) LoadState() (State, error) {
	data, err := os.ReadFile(p.State())
	if errors.Is(err, fs.ErrNotExist) {
		return State{Version: StateVersion}, nil
	}
	if err != nil {
		return State{}, err
	}
	s, err := ParseState(data)
	if err != nil {
		return State{}, &FileError{Path: p.State(), Problem: err.Error(),
			Fix: "delete it to start over (nothing is lost: the next pull compares with the cloud and asks before replacing anything)"}
	}
	return s, nil
}

// SaveState writes state.json atomically.
func (p Paths) SaveState(s State) error {
	s.Version = StateVersion
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.Write(p.State(), append(data, '\n'), 0o600)
}
