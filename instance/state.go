package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	// (LoadManifest). Set it with SetManifest. It is kept in its own file,
	// manifest.json: a no-op sync compares ManifestDigest with the files
	// now and never reads it, and on a large instance it is a megabyte.
	Manifest scope.Manifest `json:"-"`
	// RawManifest is a manifest stored inside state.json, as earlier
	// builds did. It is read, never written.
	RawManifest json.RawMessage `json:"manifest,omitempty"`
	// ManifestDigest is scope.Manifest.Digest of the manifest.
	ManifestDigest string `json:"manifest_digest,omitempty"`
	// Restoring marks a restore in progress: a run that finds it finishes
	// that restore first.
	Restoring string `json:"restoring,omitempty"`
	// Journal is a restore whose files are all downloaded into the staging
	// folder and are being moved into place: a run that finds it finishes
	// the move, without the server, before anything else.
	Journal *Journal `json:"journal,omitempty"`
	// PendingPush is the attempt id of a push that started and has not been
	// recorded; a snapshot carrying it is this machine's own.
	PendingPush string `json:"pending_push,omitempty"`
	// Unportable are the worlds and files of the last restored snapshot
	// whose names this computer's OS cannot hold (scope.NameHazards). They
	// were not restored and stay out of this computer's scope, so its
	// pushes neither send nor delete them, until a restore of a snapshot
	// without them.
	Unportable []string `json:"unportable,omitempty"`
	// LastSync is when the last pull or push finished.
	LastSync time.Time `json:"last_sync,omitempty"`
	// KeyHint is the id of the repository key that opens its config,
	// passed to restic as --key-hint: a repository created by two
	// computers at once holds a second key of the same password that
	// restic would otherwise try first, and fail.
	KeyHint string `json:"key_hint,omitempty"`
	// UnlockPending: a failed backup or restore may have left restic's lock
	// on the server, and "restic unlock" could not reach it yet.
	UnlockPending bool `json:"unlock_pending,omitempty"`
	// Home is where this instance lives: a state that names another
	// folder or computer was copied there (see Home).
	Home *Home `json:"home,omitempty"`

	manifestFile  string // where LoadManifest reads the manifest
	manifestDirty bool   // SetManifest was called since the last save
	staged        *StagedManifest
}

// Journal is the move phase of a restore: every file of Moves lies
// complete (and synced to disk) in the staging folder under its own path;
// Deletes are files in scope the snapshot lacks. Both steps can be run
// again after any interruption: a staged file that is gone was moved, a
// file that is gone was deleted.
type Journal struct {
	Snapshot string   `json:"snapshot"`
	Moves    []string `json:"moves,omitempty"`
	Deletes  []string `json:"deletes,omitempty"`
	// Failed counts the runs that could not finish the move.
	Failed int `json:"failed,omitempty"`
}

// Home is where an instance folder lives: the pack folder's absolute path
// and the id of the computer (UserDirs.ComputerID). Copying the folder
// copies the record, so a folder whose record names another place is a
// copy, or was moved.
type Home struct {
	Path     string `json:"path"`
	Computer string `json:"computer"`
}

// StagedManifest is a manifest already encoded and written beside
// manifest.json (StageManifest), waiting for SaveState to put it in place.
type StagedManifest struct {
	m   scope.Manifest
	tmp string
}

// StageManifest writes m, encoded, to a temp file beside manifest.json.
// A push stages the manifest while restic runs, so that recording the
// sync afterwards is a rename, not a megabyte to encode and write.
func (p Paths) StageManifest(m scope.Manifest) (*StagedManifest, error) {
	tmp, err := atomicfile.Stage(p.Manifest(), append(m.AppendJSON(nil), '\n'), 0o600)
	if err != nil {
		return nil, err
	}
	return &StagedManifest{m: m, tmp: tmp}, nil
}

// RemoveTemps removes the temp files a killed sync left beside state.json
// and manifest.json (a staged manifest lives as long as a push's backup).
// Only syncs, under the instance lock, write those two, so only the
// holder of the lock may call it.
func (p Paths) RemoveTemps() {
	for _, name := range []string{p.State(), p.Manifest()} {
		old, _ := filepath.Glob(filepath.Join(p.Dir(), "."+filepath.Base(name)+".tmp-*"))
		for _, f := range old {
			os.Remove(f)
		}
	}
}

// Discard drops a staged manifest that will not be used.
func (sm *StagedManifest) Discard() {
	if sm != nil {
		atomicfile.Discard(sm.tmp)
	}
}

// Synced reports whether this machine has a manifest from a sync.
func (s *State) Synced() bool {
	return s.Manifest != nil || s.ManifestDigest != "" || s.inline()
}

func (s *State) inline() bool {
	return len(s.RawManifest) > 0 && string(s.RawManifest) != "null"
}

// SetManifest records the scope after a sync; SaveState writes it.
func (s *State) SetManifest(m scope.Manifest) {
	if m == nil {
		m = scope.Manifest{}
	}
	s.SetManifestDigest(m, m.Digest())
}

// SetManifestDigest is SetManifest with m's digest already computed.
func (s *State) SetManifestDigest(m scope.Manifest, digest string) {
	if m == nil {
		m = scope.Manifest{}
	}
	s.staged.Discard()
	s.Manifest, s.RawManifest, s.ManifestDigest, s.manifestDirty, s.staged = m, nil, digest, true, nil
}

// SetStagedManifest is SetManifestDigest for a manifest StageManifest
// already wrote; SaveState only renames it into place.
func (s *State) SetStagedManifest(sm *StagedManifest, digest string) {
	s.SetManifestDigest(sm.m, digest)
	s.staged = sm
}

// LoadManifest decodes the stored manifest, once. A manifest.json that does
// not match state.json's digest (a sync interrupted between writing the
// two) is an error: callers then treat every file as changed, which never
// overwrites anything.
func (s *State) LoadManifest() error {
	if s.Manifest != nil || !s.Synced() {
		return nil
	}
	data, name := []byte(s.RawManifest), "state.json"
	if !s.inline() {
		if s.manifestFile == "" {
			return errors.New("the last sync's manifest was never saved")
		}
		var err error
		if data, err = os.ReadFile(s.manifestFile); err != nil {
			return err
		}
		name = s.manifestFile
	}
	var m scope.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if m == nil {
		m = scope.Manifest{}
	}
	if s.ManifestDigest != "" && m.Digest() != s.ManifestDigest {
		return fmt.Errorf("%s does not match state.json (a sync was interrupted)", name)
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
		return State{Version: StateVersion, manifestFile: p.Manifest()}, nil
	}
	if err != nil {
		return State{}, err
	}
	s, err := ParseState(data)
	if err != nil {
		return State{}, &FileError{Path: p.State(), Problem: err.Error(),
			Fix: "delete it to start over (nothing is lost: the next pull compares with the cloud and asks before replacing anything)"}
	}
	s.manifestFile = p.Manifest()
	return s, nil
}

// SaveState writes state.json atomically, and first manifest.json when the
// manifest was set since the last save.
func (p Paths) SaveState(s *State) error {
	s.Version = StateVersion
	if s.manifestDirty && s.staged != nil {
		err := atomicfile.Commit(s.staged.tmp, p.Manifest())
		s.staged = nil
		if err != nil {
			return err
		}
		s.RawManifest = nil
	} else if s.manifestDirty {
		raw := append(s.Manifest.AppendJSON(nil), '\n')
		if err := atomicfile.Write(p.Manifest(), raw, 0o600); err != nil {
			return err
		}
		s.RawManifest = nil
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(p.State(), append(data, '\n'), 0o600); err != nil {
		return err
	}
	s.manifestDirty, s.manifestFile = false, p.Manifest()
	return nil
}
