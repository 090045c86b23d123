package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/worldlock"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// Push records the instance's player data as a new snapshot when it changed
// since the last sync. It never refuses because the cloud moved: the new
// snapshot names its true base, and the other computer sees two heads.
func Push(ctx context.Context, opt Options) (Result, error) {
	s, skipped, err := openHook(ctx, opt)
	if skipped != nil {
		return *skipped, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	return s.push(ctx)
}

func (s *session) push(ctx context.Context) (Result, error) {
	u := s.opt.UI
	u.Event(ui.StartEvent{Op: "push", Instance: s.cfg.InstanceID, Label: s.label()})
	if err := s.resumeJournal(); err != nil {
		return Result{}, err
	}
	if s.state.Restoring != "" {
		return Result{}, fmt.Errorf("a restore of %s was interrupted, so the files are half-restored; run \"instance-sync pull\" to finish it before pushing", short(s.state.Restoring))
	}
	if s.unchangedSinceSync() {
		// The pull's change watcher saw nothing in scope change since the
		// last sync: the walk below would find the same.
		return s.done(Result{Action: ActionNothing, Snapshot: s.state.Last, Message: "nothing to push (no change since the pull)"})
	}
	cur, err := s.walk()
	if err != nil {
		return Result{}, fmt.Errorf("reading the instance: %w", err)
	}
	digest := cur.Digest()
	if !s.localChanged(cur, digest) && len(s.state.Skipped) == 0 {
		return s.done(Result{Action: ActionNothing, Snapshot: s.state.Last, Message: "nothing to push"})
	}
	if len(cur) == 0 {
		// restic cannot record an empty backup; deleting everything is far
		// more likely a mistake than a wish to sync an empty instance.
		u.Warn("nothing in the sync scope; not pushing an empty instance (the cloud keeps the last version)")
		return Result{Action: ActionNothing, Snapshot: s.state.Last, Message: "empty scope"}, nil
	}
	if err := checkOpenWorlds(s.opt.PackFolder); err != nil {
		return Result{}, err
	}
	if len(s.state.Unportable) > 0 {
		u.Warn("not synced on this computer: " + strings.Join(s.state.Unportable, ", ") + " (names this computer's system cannot hold; rename them on the computer that made them)")
	}
	listing, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
	if errors.Is(err, remote.ErrUnreachable) || errors.Is(err, remote.ErrServer) {
		return Result{}, fmt.Errorf("%w; your progress is safe on this computer and the next pull or push uploads it", err)
	}
	if err != nil {
		return Result{}, err
	}
	rc, err := s.resticClient(ctx)
	if err != nil {
		return Result{}, err
	}
	if s.state.PendingPush != "" && listing.Exists {
		// The last push was killed: if restic saved its snapshot, that
		// snapshot is ours and becomes this push's base.
		if _, err := s.graph(ctx, listing); err != nil {
			return Result{}, err
		}
	}
	if listing.Exists && len(listing.Snapshots) == 0 {
		// restic init creates the folders a key derivation before it
		// writes the key and config (another computer creating it now, or
		// an init that was killed): without a config it is created here,
		// and an init that loses the race uses the one that won.
		exists, err := s.hasConfig(ctx)
		if err != nil {
			return Result{}, err
		}
		listing.Exists = exists
	}
	if !listing.Exists {
		u.Info("creating the cloud repository for this instance")
		if err := s.initRepository(ctx, rc); err != nil {
			return Result{}, err
		}
	}
	bases := []string{}
	if s.state.Last != "" {
		bases = append(bases, s.state.Last)
	}
	for _, sk := range s.state.Skipped {
		bases = appendUnique(bases, sk)
	}
	// The manifest is encoded and written while restic runs (restic
	// leaves a core idle for most of a push); afterwards recording the
	// sync is a rename.
	staged := make(chan *instance.StagedManifest, 1)
	stage := func() {
		sm, err := s.paths.StageManifest(cur)
		if err != nil {
			sm = nil // SaveState encodes and writes it then
		}
		staged <- sm
	}
	sum, err := s.backup(ctx, history.KindPush, bases, parentIn(listing, s.state.Last), cur, stage)
	id := sum.SnapshotID
	var sm *instance.StagedManifest
	select {
	case sm = <-staged:
	default: // restic never started
	}
	partial := errors.Is(err, restic.ErrPartial)
	if err != nil && !partial {
		sm.Discard()
		return Result{}, err
	}
	// What changed here since the last sync, for the message: read before
	// the new manifest replaces the old one.
	changes, known := s.changesSinceSync(cur)
	s.state.Last = id
	s.state.Skipped = nil
	switch {
	case partial:
		sm.Discard()
	case sm != nil:
		// The manifest is the walk taken before the backup: a file changed
		// during the backup shows as changed next time and is pushed again.
		s.state.SetStagedManifest(sm, digest)
	default:
		s.state.SetManifestDigest(cur, digest)
	}
	// The push's moment is its snapshot's, as history shows it.
	s.state.LastSync = s.state.Known[id].Time
	if err := s.save(); err != nil {
		return Result{}, err
	}
	if partial {
		return Result{}, fmt.Errorf("%w; snapshot %s is incomplete and the next push tries again", err, short(id))
	}
	return s.done(Result{Action: ActionPushed, Snapshot: id, Message: pushedMessage(sum, changes, known)})
}

// changesSinceSync compares the walk with the manifest of the last sync:
// what this computer changed, in its own scope (the snapshot it last
// synced with may come from a computer that syncs more). known is false
// when there is no manifest to compare with.
func (s *session) changesSinceSync(cur scope.Manifest) (ch scope.Changes, known bool) {
	if !s.state.Synced() {
		return scope.Diff(nil, cur), true
	}
	last := s.lastManifest()
	if last == nil {
		return scope.Changes{}, false
	}
	return scope.Diff(last, cur), true
}

// pushedMessage says what a push changed and uploaded, and what the
// snapshot holds: "pushed snapshot 1a2b3c4d: 1 file changed, 1.2 KiB
// uploaded; 3 files, 195.3 KiB in the snapshot". Changed (new or
// modified) and deleted files are this computer's since its last sync;
// without a manifest to compare with, restic's count of new and changed
// files against the parent.
func pushedMessage(sum restic.BackupSummary, ch scope.Changes, known bool) string {
	changed, deleted := len(ch.Added)+len(ch.Modified), len(ch.Removed)
	if !known {
		changed, deleted = int(sum.FilesNew+sum.FilesChg), 0
	}
	var what string
	switch {
	case changed > 0 && deleted > 0:
		what = fmt.Sprintf("%s changed, %d deleted", ui.Plural(changed, "file"), deleted)
	case deleted > 0:
		what = ui.Plural(deleted, "file") + " deleted"
	default:
		what = ui.Plural(changed, "file") + " changed"
	}
	return fmt.Sprintf("pushed snapshot %s: %s, %s uploaded; %s, %s in the snapshot",
		short(sum.SnapshotID), what, ui.HumanBytes(sum.DataAddedPacked), ui.Plural(int(sum.TotalFiles), "file"), ui.HumanBytes(sum.TotalBytes))
}

// backup writes the file lists and runs restic backup from the pack folder
// with relative paths, so the snapshot restores into any folder. It records
// the new snapshot's metadata in state (not saved) and returns restic's
// summary of it. alongside, if not nil,
// runs in a goroutine from the moment restic starts, and has finished when
// backup returns.
func (s *session) backup(ctx context.Context, kind string, bases []string, parent string, cur scope.Manifest, alongside func()) (restic.BackupSummary, error) {
	rc, err := s.resticClient(ctx)
	if err != nil {
		return restic.BackupSummary{}, err
	}
	// restic gets the scope's folders and exclude patterns when its own
	// filtering picks exactly the walked files (it walks folders faster than
	// it takes a list of thousands of files); otherwise the exact file list.
	targets, excludes, folders := s.scope.ResticFilter(cur, s.facts)
	if !folders {
		targets, excludes = cur.Paths(), nil
	}
	// NUL-separated (--files-from-raw): a name may hold a newline, a
	// carriage return or bytes that are not UTF-8, never a NUL.
	var list strings.Builder
	for _, p := range targets {
		list.WriteString(filepath.FromSlash(p))
		list.WriteByte(0)
	}
	// restic's inputs are written again before every backup and read only
	// by it: no fsync (a crash can only lose a file the next push rewrites).
	if err := os.WriteFile(s.paths.FilesFrom(), []byte(list.String()), 0o600); err != nil {
		return restic.BackupSummary{}, err
	}
	if err := os.WriteFile(s.paths.ExcludeFrom(), []byte(strings.Join(excludes, "\n")+"\n"), 0o600); err != nil {
		return restic.BackupSummary{}, err
	}
	attempt := newAttempt()
	if kind == history.KindPush {
		s.state.PendingPush = attempt
		if err := s.save(); err != nil {
			return restic.BackupSummary{}, err
		}
	}
	rec := s.scopeRecord()
	tags := append(history.Tags(kind, bases, s.label(), attempt), history.ScopeTag(rec))
	var supersedes []string
	if kind == history.KindPush {
		// The heads the player chose to keep this computer's files over:
		// the computers that pushed them say so at their next pull.
		supersedes = slices.Clone(s.state.Skipped)
		tags = append(tags, history.SupersedesTags(supersedes)...)
	}
	u := s.opt.UI
	u.ProgressStart("push")
	var sum restic.BackupSummary
	if alongside != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			alongside()
		}()
		defer func() { <-done }()
	}
	err = s.withUnlock(ctx, func() error {
		var err error
		sum, err = rc.Backup(ctx, restic.BackupOptions{
			FilesFrom: s.paths.FilesFrom(), ExcludeFile: s.paths.ExcludeFrom(), Host: s.opt.Hostname,
			Tags: tags, Parent: parent, Files: len(cur),
		}, func(st restic.Status) { u.ProgressUpdate(progressOf("push", st)) })
		return err
	})
	u.ProgressDone()
	if sum.SnapshotID == "" {
		if err == nil {
			err = errors.New("restic backup reported no snapshot")
		}
		return restic.BackupSummary{}, err
	}
	if s.state.Known == nil {
		s.state.Known = map[string]history.Snapshot{}
	}
	// The snapshot's time is restic's, as every other computer reads it.
	when := sum.BackupStart
	if when.IsZero() {
		when = time.Now()
	}
	s.state.Known[sum.SnapshotID] = history.Snapshot{
		ID: sum.SnapshotID, Time: when.UTC(), Host: s.opt.Hostname, Label: s.label(), Kind: kind,
		Bases: bases, Files: sum.TotalFiles, Bytes: sum.TotalBytes, Attempt: attempt, Supersedes: supersedes, Scope: &rec,
	}
	if kind == history.KindPush {
		s.state.PendingPush = ""
	}
	return sum, err
}

// safety snapshots the local files before they are replaced. It returns
// "" when there is nothing local to keep.
func (s *session) safety(ctx context.Context, cur scope.Manifest) (string, error) {
	if len(cur) == 0 {
		return "", nil
	}
	listing, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
	if err != nil {
		return "", err
	}
	if !listing.Exists {
		return "", errors.New("the cloud repository does not exist")
	}
	var bases []string
	if s.state.Last != "" {
		bases = []string{s.state.Last}
	}
	sum, err := s.backup(ctx, history.KindSafety, bases, parentIn(listing, s.state.Last), cur, nil)
	id := sum.SnapshotID
	if err != nil {
		return "", fmt.Errorf("safety snapshot before replacing local files: %w; nothing was replaced", err)
	}
	s.opt.UI.Info("saved this computer's files as safety snapshot " + short(id))
	return id, s.save()
}

// withUnlock runs f; when restic says the repository is locked, it removes
// stale locks once ("restic unlock" only removes locks that are stale) and
// tries again.
func (s *session) withUnlock(ctx context.Context, f func() error) error {
	err := f()
	if errors.Is(err, restic.ErrLocked) {
		s.opt.UI.Warn("the cloud repository is locked; removing stale locks and trying once more")
		if uerr := s.restic.Unlock(ctx); uerr != nil {
			return err
		}
		err = f()
	}
	if errors.Is(err, restic.ErrStorageFull) {
		// The server refused the upload before storing it: say how full
		// the account is (cloud-svc tells) instead of restic's HTTP error.
		return s.server.StorageFull(ctx)
	}
	return err
}

// parentIn is the --parent for a backup: the last synced snapshot while
// the server still has it. A repository deleted and created again (by the
// operator, or lost) no longer does, and restic refuses a missing parent;
// the parent only spares restic reading unchanged files, so the backup
// goes on without it. The snapshot still names the old one as its base.
func parentIn(l remote.Listing, last string) string {
	if _, ok := l.Snapshots[last]; ok {
		return last
	}
	return ""
}

func checkOpenWorlds(pack string) error { return worldlock.Check(pack) }

// newAttempt is a random id for one push.
func newAttempt() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
