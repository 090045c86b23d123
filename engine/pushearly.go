package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/scope"
)

// earlyRun is a push's restic backup started right after the walk, with
// the checks that used to come before it (the listing, the key list, the
// lock check) made while restic starts. restic spends its first half
// second deriving the key from the password, without a request: the
// checks are back long before it could write anything.
type earlyRun struct {
	rc      *restic.Client
	sum     restic.BackupSummary
	err     error
	listing remote.Listing
	ahead   *resticAhead
	// fallBack: restic failed before it wrote anything, for a reason the
	// checks explain (the parent or the repository is gone, the key was
	// changed): the push goes on with every check before restic
	// (backupInOrder), with this listing and key list.
	fallBack bool
}

// errChecksFailed stops an early restic run whose checks failed: the
// push reports the check's error, as when the checks came first.
var errChecksFailed = errors.New("the checks before the backup failed")

// errParentGone stops an early restic run whose parent the listing does
// not have. restic keeps the snapshots it wrote in its cache and would
// take the parent from there; when retention pruned it, its trees are
// gone and restic reports the snapshot incomplete ("tree ... is not
// known; the repository could be damaged").
var errParentGone = errors.New("the parent snapshot is gone from the server")

// startEarly returns the restic client for a backup that starts before
// the checks, or nil when the push must make them first. It starts early
// only when the last sync says all they would: this computer synced with
// the repository (it exists, and its snapshot is the parent), which key
// opens it, and no push to recover (its snapshot, if any, becomes the
// base: the graph is read first), no heads skipped or merged, and no lock
// a failed run may have left. restic must be here already (never a
// download before the listing).
func (s *session) startEarly(ctx context.Context) *restic.Client {
	st := &s.state
	if st.Last == "" || st.KeyHint == "" || st.PendingPush != "" || len(st.Skipped) > 0 || len(st.Merged) > 0 ||
		st.UnlockPending || s.restic != nil || s.ahead != nil {
		return nil
	}
	rc, err := s.newRestic(ctx, true)
	if err != nil {
		return nil
	}
	rc.KeyHint = st.KeyHint
	return rc
}

// backupEarly runs restic backup with the last sync as its parent and the
// key it was made with, while the listing, the key list and the lock
// check are made. What each check was for still holds:
//
//   - A listing that fails (server unreachable, 5xx, a refused token) or a
//     key list that fails stops restic, and the push says what it says
//     when the checks come first. The PendingPush save that precedes
//     restic stays: the next run finds restic wrote no snapshot.
//   - A parent the server no longer has (retention removed or re-tagged
//     it, the repository was deleted or created again): restic is stopped
//     (errParentGone) while it still derives its key, and the push goes on
//     as before, without the parent or creating the repository (fallBack).
//     It goes on as after a killed push: the listing is taken again, and
//     a snapshot the stopped run wrote becomes the base. A run that ended
//     by itself first (a missing repository, a parent restic did not
//     cache) wrote nothing.
//   - A key the list no longer has (a password rotation, a repository
//     created again): restic tries the other keys itself; if it fails
//     the key is chosen as before and restic runs again (fallBack), if it
//     succeeded the key is chosen for the next run (chooseKeyAfter).
//   - Locks on the server: a killed run's lock does not stop a backup (and
//     one that does makes restic exit "locked", which withUnlock handles as
//     before); it is removed after the backup instead of before it.
//
// restic's stderr is held until the checks agree with how restic was
// started, and dropped when it runs again.
func (s *session) backupEarly(ctx context.Context, rc *restic.Client, cur *scope.Files, facts scope.Facts, alongside func()) *earlyRun {
	e := &earlyRun{rc: rc}
	s.prefetchRestic(ctx)
	e.ahead, s.ahead = s.ahead, nil
	type listed struct {
		l   remote.Listing
		err error
	}
	lc := make(chan listed, 1)
	go func() {
		l, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
		lc <- listed{l, err}
	}()
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	gate := &heldWriter{out: s.opt.Stderr}
	rc.Stderr = gate
	// close() removes what a failed run leaves.
	s.restic = rc
	last := s.state.Last
	var got listed
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		got = <-lc
		if got.err != nil {
			stop(errChecksFailed)
			return
		}
		if _, ok := got.l.Snapshots[last]; !ok {
			stop(errParentGone)
		}
		<-e.ahead.done
		if e.ahead.keysErr != nil {
			stop(errChecksFailed)
			return
		}
		if e.agrees(got.l, last) {
			gate.release()
		}
	}()
	e.sum, e.err = s.backup(runCtx, history.KindPush, []string{last}, last, cur, facts, alongside)
	<-checked
	rc.Stderr = s.opt.Stderr
	if got.err != nil {
		gate.drop()
		e.sum, e.err = restic.BackupSummary{}, listingError(got.err)
		return e
	}
	<-e.ahead.done
	if e.ahead.keysErr != nil {
		gate.drop()
		e.sum, e.err = restic.BackupSummary{}, e.ahead.keysErr
		return e
	}
	e.listing = got.l
	if e.ahead.locks {
		// Left by a run that was killed: removed when the session ends.
		rc.LeftLock = true
	}
	if e.err != nil && e.sum.SnapshotID == "" {
		switch {
		case context.Cause(runCtx) == errParentGone:
			// Stopped, or never started: restic may have written its
			// snapshot just before it stopped. The listing is taken
			// again and the push recovers that snapshot as a killed
			// push's (PendingPush stays).
			gate.drop()
			l, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
			if err != nil {
				e.err = listingError(err)
				return e
			}
			e.listing, e.fallBack = l, true
			return e
		case wroteNothing(e.err) && !e.agrees(got.l, last):
			gate.drop()
			e.fallBack = true
			// The attempt wrote no snapshot: the push is not one to
			// recover.
			s.state.PendingPush = ""
			return e
		}
	}
	gate.release()
	return e
}

// agrees reports whether the checks say what restic was started with:
// the parent last is in the listing, and the key hint in the key list.
func (e *earlyRun) agrees(l remote.Listing, last string) bool {
	_, ok := l.Snapshots[last]
	return ok && slices.Contains(e.ahead.keys, e.rc.KeyHint)
}

// wroteNothing reports whether restic's backup ended by itself before it
// wrote a snapshot: the repository is missing (exit 10) or will not open
// with the password (12), or a fatal error (1) such as a missing parent.
// A run that was stopped (stalled, cancelled) may have written one.
func wroteNothing(err error) bool {
	var re *restic.Error
	if !errors.As(err, &re) {
		return false
	}
	return re.Kind == restic.ErrNoRepository || re.Kind == restic.ErrWrongPassword || re.ExitCode == 1 && re.Kind == nil
}

// chooseKeyAfter chooses the key again when restic succeeded with a hint
// the key list no longer has, so the next run starts with the right one.
// The push is recorded already; a failure here is the next run's to see.
func (e *earlyRun) chooseKeyAfter(ctx context.Context, s *session) {
	if slices.Contains(e.ahead.keys, e.rc.KeyHint) {
		return
	}
	_ = s.chooseKeyFrom(ctx, e.rc, e.ahead.keys)
}

// heldWriter holds what is written until released (then passes it on) or
// dropped (then discards everything).
type heldWriter struct {
	mu       sync.Mutex
	out      io.Writer
	buf      bytes.Buffer
	released bool
	dropped  bool
}

func (h *heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.dropped || h.out == nil:
	case h.released:
		_, _ = h.out.Write(p)
	default:
		h.buf.Write(p)
	}
	return len(p), nil
}

func (h *heldWriter) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dropped || h.released {
		return
	}
	h.released = true
	if h.out != nil && h.buf.Len() > 0 {
		_, _ = h.out.Write(h.buf.Bytes())
	}
	h.buf.Reset()
}

func (h *heldWriter) drop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.dropped = true
	h.buf.Reset()
}
