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
	// this machine never synced or when it has not been decoded yet
	// (LoadManifest). Set it with SetManifest.
	Manifest scope.Manifest `json:"-"`
	// RawManifest is the manifest as stored. A no-op sync compares digests
	// and never decodes it: on a large instance that is most of the cost
	// of reading state.json.
	RawManifest json.RawMessage `json:"manifest"`
	// ManifestDigest is scope.Manifest.Digest of the manifest.
	ManifestDigest string `json:"manifest_digest,omitempty"`
	// Restoring marks a restore in progress: a run that finds it finishes
	// that restore first.
	Restoring string `json:"restoring,omitempty"`
	// PendingPush is the attempt id of a push that started and has not been
	// recorded; a snapshot carrying it is this machine's own.
	PendingPush string `json:"pending_push,omitempty"`
	// LastSync is when the last pull or push finished.
	LastSync time.Time `json:"last_sync,omitempty"`
}

// Synced reports whether this machine has a manifest from a sync.
func (s *State) Synced() bool {
	return s.Manifest != nil || (len(s.RawManifest) > 0 && string(s.RawManifest) != "null")
}

// SetManifest records the scope after a sync.
func (s *State) SetManifest(m scope.Manifest) {
	if m == nil {
		m = scope.Manifest{}
	}
	s.Manifest, s.RawManifest, s.ManifestDigest = m, nil, m.Digest()
}

// LoadManifest decodes the stored manifest, once.
func (s *State) LoadManifest() error {
	if s.Manifest != nil || !s.Synced() {
		return nil
	}
	var m scope.Manifest
	if err := json.Unmarshal(s.RawManifest, &m); err != nil {
		return err
	}
	if m == nil {
		m = scope.Manifest{}
	}
	s.Manifest = m
	return nil
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
	if s.Manifest != nil {
		raw, err := json.Marshal(s.Manifest)
		if err != nil {
			return err
		}
		s.RawManifest = raw
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.Write(p.State(), append(data, '\n'), 0o600)
}
