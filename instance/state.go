package instance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	// Merged are heads whose changes a pull merged into the local files
	// (per world, DESIGN.md "Per-world merge"); the next push names them
	// as bases too, so the fork closes.
	Merged []string `json:"merged_heads,omitempty"`
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

	manifestFile  string       // where LoadManifest reads the manifest
	manifestDirty bool         // SetManifest was called since the last save
	files         *scope.Files // the manifest as a walk kept it (SetFiles)
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
	// Merge: the files are some units of Snapshot merged into the local
	// files, not the whole snapshot; finishing records Snapshot as merged
	// and keeps the last sync and its manifest.
	Merge bool `json:"merge,omitempty"`
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
// manifest.json (StageManifest, StageFiles), waiting for SaveState to put
// it in place.
type StagedManifest struct {
	m   scope.Manifest
	f   *scope.Files
	tmp string
}

// StageManifest writes m, encoded, to a temp file beside manifest.json.
// A push stages the manifest while restic runs, so that recording the
// sync afterwards is a rename, not a megabyte to encode and write.
func (p Paths) StageManifest(m scope.Manifest) (*StagedManifest, error) {
	tmp, err := atomicfile.StageFunc(p.Manifest(), 0o600, m.WriteJSON)
	if err != nil {
		return nil, err
	}
	return &StagedManifest{m: m, tmp: tmp}, nil
}

// StageFiles is StageManifest for a walk kept as scope.Files.
func (p Paths) StageFiles(f *scope.Files) (*StagedManifest, error) {
	tmp, err := atomicfile.StageFunc(p.Manifest(), 0o600, f.WriteJSON)
	if err != nil {
		return nil, err
	}
	return &StagedManifest{f: f, tmp: tmp}, nil
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
	return s.Manifest != nil || s.files != nil || s.ManifestDigest != "" || s.inline()
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
	s.Manifest, s.files, s.RawManifest, s.ManifestDigest, s.manifestDirty, s.staged = m, nil, nil, digest, true, nil
}

// SetFiles is SetManifestDigest for a walk kept as scope.Files: the
// Manifest is made from it only if LoadManifest is called.
func (s *State) SetFiles(f *scope.Files, digest string) {
	s.staged.Discard()
	s.Manifest, s.files, s.RawManifest, s.ManifestDigest, s.manifestDirty, s.staged = nil, f, nil, digest, true, nil
}

// SetStagedManifest is SetManifestDigest (or SetFiles) for a manifest
// StageManifest (or StageFiles) already wrote; SaveState only renames it
// into place.
func (s *State) SetStagedManifest(sm *StagedManifest, digest string) {
	if sm.f != nil {
		s.SetFiles(sm.f, digest)
	} else {
		s.SetManifestDigest(sm.m, digest)
	}
	s.staged = sm
}

// RecordSync records that the local files were synced with snapshot id at
// time at (not saved): it becomes the base of the next push, the heads the
// player skipped are settled (the push named them as bases, or the restore
// replaced them), and a restore in progress is done. The manifest of the
// files synced is set first (SetManifest, SetManifestDigest, SetFiles or
// SetStagedManifest); a sync that leaves the last one (an incomplete push)
// leaves the files counting as changed.
func (s *State) RecordSync(id string, at time.Time) {
	s.Last, s.LastSync = id, at
	s.Skipped, s.Merged = nil, nil
	s.Journal, s.Restoring = nil, ""
}

// RecordMerge records that a pull merged some units of head id into the
// local files: the last sync and its manifest stay (what changed here is
// still to push), the next push names id as a base too, and the merge's
// restore is done.
func (s *State) RecordMerge(id string) {
	if !slices.Contains(s.Merged, id) {
		s.Merged = append(s.Merged, id)
	}
	s.Journal, s.Restoring = nil, ""
}

// LoadManifest decodes the stored manifest, once. A manifest.json that does
// not match state.json's digest (a sync interrupted between writing the
// two) is an error: callers then treat every file as changed, which never
// overwrites anything.
func (s *State) LoadManifest() error {
	if s.Manifest != nil || !s.Synced() {
		return nil
	}
	if s.files != nil {
		s.Manifest = s.files.Manifest()
		return nil
	}
	var m scope.Manifest
	var err error
	name := "state.json"
	if s.inline() {
		m, err = scope.ReadManifest(bytes.NewReader(s.RawManifest))
	} else {
		if s.manifestFile == "" {
			return errors.New("the last sync's manifest was never saved")
		}
		name = s.manifestFile
		var f *os.File
		if f, err = os.Open(s.manifestFile); err != nil {
			return err
		}
		m, err = scope.ReadManifest(f)
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if s.ManifestDigest != "" && m.Digest() != s.ManifestDigest {
		return fmt.Errorf("%s does not match state.json (a sync was interrupted)", name)
	}
	s.Manifest = m
	return nil
}

// ScanManifest calls fn with each file of the last sync's manifest, in
// path order (in the file's order when an earlier build wrote it), reading manifest.json a file at a time instead of decoding
// it whole. It fails, after fn saw some files, when the files do not
// match state.json's digest.
func (s *State) ScanManifest(fn func(p string, e scope.Entry)) error {
	switch {
	case !s.Synced():
		return nil
	case s.Manifest != nil:
		for _, p := range s.Manifest.Paths() {
			fn(p, s.Manifest[p])
		}
		return nil
	case s.files != nil:
		for p, e := range s.files.All() {
			fn(p, e)
		}
		return nil
	case s.inline() || s.ManifestDigest == "" || s.manifestFile == "":
		if err := s.LoadManifest(); err != nil {
			return err
		}
		return s.ScanManifest(fn)
	}
	f, err := os.Open(s.manifestFile)
	if err != nil {
		return err
	}
	defer f.Close()
	d := scope.NewDigester()
	err = scope.ScanManifest(f, func(p string, e scope.Entry) error {
		d.Add(p, e)
		fn(p, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.manifestFile, err)
	}
	sum, sorted := d.Sum()
	if !sorted {
		// An earlier build wrote names that are not UTF-8 first: the
		// digest needs the files sorted, so decode them.
		return s.LoadManifest()
	}
	if sum != s.ManifestDigest {
		return fmt.Errorf("%s does not match state.json (a sync was interrupted)", s.manifestFile)
	}
	return nil
}

// ParseState parses state.json content.
func ParseState(data []byte) (State, error) {
	var s State
	if err := decodeVersioned(data, &s, &s.Version, StateVersion); err != nil {
		return State{}, err
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
		write := s.Manifest.WriteJSON
		if s.Manifest == nil && s.files != nil {
			write = s.files.WriteJSON
		}
		tmp, err := atomicfile.StageFunc(p.Manifest(), 0o600, write)
		if err == nil {
			err = atomicfile.Commit(tmp, p.Manifest())
		}
		if err != nil {
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
