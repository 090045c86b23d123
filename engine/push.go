package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// Push records the instance's player data as a new snapshot when it changed
// since the last sync. It never refuses because the cloud moved: the new
// snapshot names its true base, and the other computer sees two heads.
func Push(ctx context.Context, opt Options) (Result, error) {
	return runHook(ctx, opt, func(s *session) (Result, error) { return s.push(ctx) })
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
	if s.state.Last == "" {
		if err := s.prepareFirstPush(ctx); err != nil {
			return Result{}, err
		}
	}
	cur, facts, err := s.walkFiles()
	if err != nil {
		return Result{}, fmt.Errorf("reading the instance: %w", err)
	}
	digest := cur.Digest()
	if !s.localChanged(cur.Len(), digest) && len(s.state.Skipped) == 0 && len(s.state.Merged) == 0 {
		return s.done(Result{Action: ActionNothing, Snapshot: s.state.Last, Message: "nothing to push"})
	}
	if cur.Len() == 0 {
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
	// The manifest is encoded and written while restic runs (restic
	// leaves a core idle for most of a push); afterwards recording the
	// sync is a rename. What changed here since the last sync, for the
	// message, is read then too: before the new manifest replaces the
	// old one.
	staged := make(chan *instance.StagedManifest, 1)
	var changes changeCounts
	var stageOnce, changesOnce sync.Once
	countChanges := func() { changes = s.changesSinceSync(cur) }
	alongside := func() {
		// Once: when restic, started before the checks, has to run
		// again (backupEarly's fallBack), this was done in its first run.
		stageOnce.Do(func() {
			sm, err := s.paths.StageFiles(cur)
			if err != nil {
				sm = nil // SaveState encodes and writes it then
			}
			staged <- sm
		})
		changesOnce.Do(countChanges)
	}
	var sum restic.BackupSummary
	var early *earlyRun
	if rc := s.startEarly(ctx); rc != nil {
		early = s.backupEarly(ctx, rc, cur, facts, alongside)
		sum, err = early.sum, early.err
	}
	if early == nil || early.fallBack {
		sum, err = s.backupInOrder(ctx, early, cur, facts, alongside)
	}
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
	changesOnce.Do(countChanges)
	switch {
	case partial:
		sm.Discard()
	case sm != nil:
		// The manifest is the walk taken before the backup: a file changed
		// during the backup shows as changed next time and is pushed again.
		s.state.SetStagedManifest(sm, digest)
	default:
		s.state.SetFiles(cur, digest)
	}
	// The push's moment is its snapshot's, as history shows it.
	s.state.RecordSync(id, s.state.Known[id].Time)
	if err := s.save(); err != nil {
		return Result{}, err
	}
	if early != nil && !early.fallBack {
		// restic opened the repository without waiting for the key list:
		// a key the list no longer has is chosen again for the next run.
		early.chooseKeyAfter(ctx, s)
	}
	if partial {
		return Result{}, fmt.Errorf("%w; snapshot %s is incomplete and the next push tries again", err, short(id))
	}
	return s.done(Result{Action: ActionPushed, Snapshot: id, Message: pushedMessage(sum, changes)})
}

// changeCounts counts what differs between the walk and the last
// sync's manifest: what this computer changed, in its own scope (the
// snapshot it last synced with may come from a computer that syncs more).
// The manifest is read a file at a time. known is false when there is no
// manifest to compare with.
type changeCounts struct {
	changed, deleted int
	known            bool
}

// backupInOrder is the push's backup with every check before restic
// starts: the listing (does the repository exist, is the parent still
// there), a push that was killed, the key and the stale locks. early, if
// not nil, is a run of restic that started before the checks and failed
// for a reason they explain; its listing and key list are used.
func (s *session) backupInOrder(ctx context.Context, early *earlyRun, cur *scope.Files, facts scope.Facts, alongside func()) (restic.BackupSummary, error) {
	u := s.opt.UI
	var listing remote.Listing
	if early != nil {
		listing = early.listing
		if err := s.settle(ctx, early.rc, early.ahead); err != nil {
			return restic.BackupSummary{}, err
		}
	} else if s.firstListing != nil {
		listing = *s.firstListing
	} else {
		// restic runs next: what it needs from the server comes in while
		// the listing does.
		s.prefetchRestic(ctx)
		var err error
		if listing, err = s.server.ListSnapshots(ctx, s.cfg.InstanceID); err != nil {
			return restic.BackupSummary{}, listingError(err)
		}
	}
	rc, err := s.resticClient(ctx)
	if err != nil {
		return restic.BackupSummary{}, err
	}
	if s.state.PendingPush != "" && listing.Exists {
		// The last push was killed: if restic saved its snapshot, that
		// snapshot is ours and becomes this push's base.
		if _, err := s.graph(ctx, listing); err != nil {
			return restic.BackupSummary{}, err
		}
	}
	if listing.Exists && len(listing.Snapshots) == 0 {
		// A repository's folders come a key derivation before its key
		// and config (another computer creating it now, or a creation
		// that was killed): without a config it is created here, and a
		// creation that loses the race uses the one that won.
		// When the other computer finished it, its key is chosen again:
		// the key list restic's key was chosen from came with the
		// listing, before this config.
		exists, err := s.chooseKey(ctx, rc)
		if err != nil {
			return restic.BackupSummary{}, err
		}
		listing.Exists = exists
	}
	if !listing.Exists {
		u.Info("creating the cloud repository for this instance")
		if err := s.initRepository(ctx, rc); err != nil {
			return restic.BackupSummary{}, err
		}
	}
	return s.backup(ctx, history.KindPush, s.pushBases(), parentIn(listing, s.state.Last), cur, facts, alongside)
}

// pushBases are the snapshots a push's snapshot descends from: the last
// sync, the heads the player chose to keep this computer's files over,
// and the heads a pull merged (the push carries their changes too).
func (s *session) pushBases() []string {
	bases := []string{}
	if s.state.Last != "" {
		bases = append(bases, s.state.Last)
	}
	for _, sk := range s.state.Skipped {
		bases = appendUnique(bases, sk)
	}
	for _, m := range s.state.Merged {
		bases = appendUnique(bases, m)
	}
	return bases
}

// listingError is a failed listing as a push says it.
func listingError(err error) error {
	if errors.Is(err, remote.ErrUnreachable) || errors.Is(err, remote.ErrServer) {
		return fmt.Errorf("%w; your progress is safe on this computer and the next pull or push uploads it", err)
	}
	return err
}

func (s *session) changesSinceSync(cur *scope.Files) changeCounts {
	if !s.state.Synced() {
		return changeCounts{changed: cur.Len(), known: true}
	}
	var c changeCounts
	both := 0 // files in the manifest and in the walk
	err := s.state.ScanManifest(func(p string, e scope.Entry) {
		now, ok := cur.Get(p)
		if !ok {
			c.deleted++
			return
		}
		both++
		if now != e {
			c.changed++
		}
	})
	if err != nil {
		return changeCounts{}
	}
	c.changed += cur.Len() - both // added
	c.known = true
	return c
}

// pushedMessage says what a push changed and uploaded, and what the
// snapshot holds: "pushed snapshot 1a2b3c4d: 1 file changed, 1.2 KiB
// uploaded; 3 files, 195.3 KiB in the snapshot". Changed (new or
// modified) and deleted files are this computer's since its last sync;
// without a manifest to compare with, restic's count of new and changed
// files against the parent.
func pushedMessage(sum restic.BackupSummary, ch changeCounts) string {
	changed, deleted := ch.changed, ch.deleted
	if !ch.known {
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
