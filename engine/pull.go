package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// Pull brings the cloud's version of the instance's player data into the
// pack folder when it is newer, following history.Decide's table.
// A folder that has not opted in is left alone (Action "not-opted-in").
func Pull(ctx context.Context, opt Options) (Result, error) {
	return runHook(ctx, opt, func(s *session) (Result, error) {
		r, err := s.pull(ctx)
		if err == nil {
			s.keepWatcher()
		}
		return r, err
	})
}

func (s *session) pull(ctx context.Context) (Result, error) {
	u := s.opt.UI
	u.Event(ui.StartEvent{Op: "pull", Instance: s.cfg.InstanceID, Label: s.label()})
	if err := s.resumeJournal(); err != nil {
		return s.notRestored(err)
	}
	listing, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
	if serverTrouble(err) && !s.opt.OfflineFail {
		return s.offline(err)
	}
	if err != nil {
		return Result{}, err
	}
	if s.newInListing(listing) {
		// A restore is likely: the index and what restic needs come in
		// while the new snapshots' metadata does.
		s.prefetchTrees(ctx)
		s.prefetchRestic(ctx)
	}
	g, err := s.graph(ctx, listing)
	if serverTrouble(err) && !s.opt.OfflineFail {
		// The server failed while the new snapshots' metadata was read:
		// nothing was changed yet.
		return s.offline(err)
	}
	if err != nil {
		return Result{}, err
	}
	if r := s.state.Restoring; r != "" {
		if _, ok := g[r]; !ok {
			// The snapshot being restored is gone from the server: the files
			// keep counting as changed against the old manifest, so nothing
			// is overwritten without the player's choice.
			u.Warn("an interrupted restore of " + short(r) + " cannot be finished: that snapshot is gone from the server")
			s.state.Restoring = ""
			if err := s.save(); err != nil {
				return Result{}, err
			}
		}
	}
	in := history.Input{
		Last:      s.state.Last,
		Skipped:   append(slices.Clone(s.state.Skipped), s.state.Merged...),
		Restoring: s.state.Restoring,
		Graph:     g,
	}
	// When the cloud holds nothing this computer has not synced, the pull
	// does nothing whatever the local files look like (local changes are
	// the exit hook's to push), so it does not stat them: this is the
	// path every game start takes. A first sync still looks, to say
	// whether there is anything to push.
	var cur scope.Manifest
	var facts scope.Facts
	walked := false
	if plan := history.Decide(in); plan.Action != history.Nothing || !s.state.Synced() || len(s.state.Merged) > 0 || s.scopeLooksEmpty() {
		if cur, facts, err = s.walk(); err != nil {
			return Result{}, fmt.Errorf("reading the instance: %w", err)
		}
		walked = true
		in.LocalChanged = s.localChanged(len(cur), cur.Digest())
	}
	plan := history.Decide(in)
	if heads := g.Heads(); walked && len(cur) == 0 && s.state.Synced() && len(heads) > 0 && plan.Action != history.FastForward && plan.Action != history.Resume {
		// Every synced file is gone while the cloud holds a version: a
		// reinstalled launcher or a deleted saves folder, not a wish to
		// sync an empty instance (push refuses it too). Nothing local to
		// protect: the newest version comes back.
		u.Info("every synced file is gone from this computer (a reinstalled launcher or a deleted folder?); restoring the newest cloud version " + short(heads[0].ID))
		plan = history.Plan{Action: history.FastForward, Target: heads[0].ID, Reason: "nothing of the sync scope on this computer"}
	}
	if plan.Action == history.Resume {
		// An interrupted restore of an earlier build: a newer version that
		// descends from it supersedes it (the restore compares every file).
		if heads := g.Heads(); len(heads) > 0 && heads[0].ID != plan.Target && g.Descends(heads[0].ID, plan.Target) {
			plan.Target = heads[0].ID
		}
	}
	if plan.Action == history.Conflict {
		// Only units changed on both sides need the player: a merge
		// settles the rest (DESIGN.md "Per-world merge").
		if r, ok, err := s.merge(ctx, plan, cur, facts, g); ok || err != nil {
			return r, err
		}
	}
	u.Event(ui.DecisionEvent{Action: plan.Action.String(), Target: plan.Target, Reason: plan.Reason})
	switch plan.Action {
	case history.Nothing:
		return s.done(Result{Action: ActionNothing, Snapshot: s.state.Last, Message: "up to date"})
	case history.LocalAhead:
		return s.done(Result{Action: ActionLocalAhead, Snapshot: s.state.Last, Message: plan.Reason})
	case history.FastForward, history.Resume:
		msg := "restored " + short(plan.Target) + " from " + g[plan.Target].Host
		if by, ok := g.SupersededBy(plan.Target, s.state.Last); ok && plan.Action == history.FastForward {
			// Another computer kept its files over this one's last version:
			// the restore replaces it, so say where it is.
			msg += fmt.Sprintf("; %s kept its own files over this computer's last version %s, which stays in history: \"instance-sync restore %s\" brings it back", by.Host, short(s.state.Last), short(s.state.Last))
		}
		if plan.Safety {
			// The last sync is gone from the server (retention): these
			// files are its only copy.
			safety, err := s.safety(ctx, cur, facts)
			if err != nil {
				return s.notRestored(&StageError{err})
			}
			if safety != "" {
				msg += "; this computer's last synced version, no longer on the server, is kept in safety snapshot " + short(safety)
			}
		}
		if err := s.restore(ctx, plan.Target, nil); err != nil {
			return s.notRestored(err)
		}
		return s.done(Result{Action: Action(plan.Action.String()), Snapshot: plan.Target, Message: msg})
	}
	return s.resolve(ctx, plan, cur, facts, g)
}

// notRestored ends a pull whose restore failed. A restore that failed
// before changing anything (StageError), or whose move the next run
// finishes, leaves files the player can play: like offline, a warning and
// the game starts, unless --offline=fail. The pre-launch hook must not fail
// on every launch because of a snapshot or a full disk.
func (s *session) notRestored(err error) (Result, error) {
	var se *StageError
	staged := errors.As(err, &se)
	if s.opt.OfflineFail || (!staged && s.state.Journal == nil) {
		return Result{}, err
	}
	msg := err.Error()
	switch {
	case staged && strings.Contains(msg, "nothing was changed"):
		msg += ": playing with the files on this computer"
	case staged:
		msg += "; nothing was changed: playing with the files on this computer"
	default:
		msg += "; playing with the files as they are"
	}
	s.opt.UI.Warn(msg)
	return Result{Action: ActionNotRestored, Snapshot: s.state.Last, Message: msg}, nil
}

// offline ends a pull that could not talk to the server before it changed
// anything: the game starts with the files on this computer.
func (s *session) offline(err error) (Result, error) {
	s.opt.UI.Warn(fmt.Sprintf("%v; playing with the files on this computer, they sync next time", err))
	return Result{Action: ActionOffline, Message: err.Error()}, nil
}

// serverTrouble reports whether err is the server failing (unreachable, a
// 5xx, or restic giving up on it), as opposed to a refused login or a
// problem on this computer.
func serverTrouble(err error) bool {
	if err == nil || errors.Is(err, remote.ErrAuth) || errors.Is(err, restic.ErrWrongPassword) {
		return false
	}
	if errors.Is(err, remote.ErrUnreachable) || errors.Is(err, remote.ErrServer) || errors.Is(err, restic.ErrStalled) {
		return true
	}
	var re *restic.Error
	return errors.As(err, &re) && strings.Contains(re.Message, "unexpected HTTP response (5")
}

// resolve handles a conflict: --prefer, else the player's choice.
func (s *session) resolve(ctx context.Context, plan history.Plan, cur scope.Manifest, facts scope.Facts, g history.Graph) (Result, error) {
	choice := ui.ChoiceCancel
	switch s.opt.Prefer {
	case "cloud":
		choice = ui.ChoiceCloud
	case "local":
		choice = ui.ChoiceLocal
	default:
		c := s.describeConflict(ctx, plan, cur)
		s.opt.UI.Event(ui.ConflictEvent{Reason: plan.Reason, Heads: headIDs(plan.Heads), Instance: c.Instance, Local: c.Local, Cloud: c.Cloud})
		var err error
		choice, err = s.opt.UI.Conflict(ctx, c)
		if errors.Is(err, ui.ErrHeadless) {
			for _, line := range ui.DescribeConflict(c) {
				s.opt.UI.Info(line)
			}
			return Result{}, &ConflictError{Reason: plan.Reason, Heads: plan.Heads}
		}
		if err != nil && !errors.Is(err, ui.ErrCancelled) {
			return Result{}, err
		}
	}
	return s.resolved(ctx, plan, cur, facts, choice)
}

// resolved carries out the player's choice for the whole instance.
func (s *session) resolved(ctx context.Context, plan history.Plan, cur scope.Manifest, facts scope.Facts, choice ui.Choice) (Result, error) {
	switch choice {
	case ui.ChoiceLocal:
		for _, h := range plan.Heads {
			s.state.Skipped = appendUnique(s.state.Skipped, h.ID)
		}
		if err := s.save(); err != nil {
			return Result{}, err
		}
		return s.done(Result{Action: ActionKeptLocal, Snapshot: s.state.Last,
			Message: "kept this computer's files; the next push records the cloud version as superseded (it stays in history)"})
	case ui.ChoiceCloud:
		target := plan.Heads[0]
		if s.opt.Snapshot != "" {
			var ok bool
			if target, ok = headsGraph(plan.Heads).Resolve(s.opt.Snapshot); !ok {
				return Result{}, fmt.Errorf("--snapshot=%s names none of the cloud versions (%s); run \"instance-sync history\" to see them", s.opt.Snapshot, strings.Join(shortIDs(plan.Heads), ", "))
			}
		}
		safety, err := s.safety(ctx, cur, facts)
		if err != nil {
			return Result{}, err
		}
		if err := s.restore(ctx, target.ID, s.editedSince(cur)); err != nil {
			return s.notRestored(err)
		}
		msg := "restored " + short(target.ID) + " from " + target.Host
		if safety != "" {
			msg += "; this computer's files are kept in safety snapshot " + short(safety)
		}
		return s.done(Result{Action: ActionUsedCloud, Snapshot: target.ID, Message: msg})
	}
	return Result{}, ErrCancelled
}

func (s *session) describeConflict(ctx context.Context, plan history.Plan, cur scope.Manifest) ui.Conflict {
	ch := scope.Diff(s.lastManifest(), cur)
	var size int64
	for _, p := range append(ch.Added, ch.Modified...) {
		size += cur[p].Size
	}
	local := ui.Side{Host: s.opt.Hostname, Label: s.label(), Time: newestMTime(cur, ch), Size: size,
		Files: len(ch.All()), Worlds: scope.Worlds(ch.All())}
	c := ui.Conflict{Instance: s.label(), Local: local}
	for _, h := range plan.Heads {
		side := ui.Side{SnapshotID: h.ID, Host: h.Host, Label: h.Label, Time: h.Time, Size: h.Bytes, Files: int(h.Files)}
		// What the cloud changed since this computer's last sync, measured
		// like the local side: the files changed and their sizes, from the
		// two snapshots' trees (read in-process, only when there is a
		// conflict).
		if paths, size, ok := s.changedBetween(ctx, s.state.Last, h.ID); ok {
			side.Files, side.Size, side.Worlds = len(paths), size, scope.Worlds(paths)
		}
		c.Cloud = append(c.Cloud, side)
	}
	return c
}

// changedBetween lists the files in scope that differ between snapshots
// from and to (added, changed or deleted; contents compared by their
// blobs), and the size in to of those still there. ok is false when either
// snapshot cannot be read (none yet, pruned, the server gone): the
// conflict then shows the head's totals.
func (s *session) changedBetween(ctx context.Context, from, to string) (paths []string, size int64, ok bool) {
	if from == "" {
		return nil, 0, false
	}
	a, err := s.snapshotItems(ctx, from)
	if err != nil {
		return nil, 0, false
	}
	b, err := s.snapshotItems(ctx, to)
	if err != nil {
		return nil, 0, false
	}
	for p, it := range b {
		if it.Type != "file" || !s.scope.InScope(p) {
			continue
		}
		if old, ok := a[p]; !ok || old.Type != "file" || old.Size != it.Size || !slices.Equal(old.Content, it.Content) {
			paths = append(paths, p)
			size += it.Size
		}
	}
	for p, it := range a {
		if it.Type != "file" || !s.scope.InScope(p) {
			continue
		}
		if now, ok := b[p]; !ok || now.Type != "file" {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, size, true
}

func newestMTime(m scope.Manifest, ch scope.Changes) time.Time {
	var t int64
	for _, p := range append(ch.Added, ch.Modified...) {
		if m[p].MTime > t {
			t = m[p].MTime
		}
	}
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, t)
}

func headIDs(h []history.Snapshot) []string {
	out := make([]string, len(h))
	for i, s := range h {
		out[i] = s.ID
	}
	return out
}

func shortIDs(h []history.Snapshot) []string {
	out := headIDs(h)
	for i := range out {
		out[i] = short(out[i])
	}
	return out
}

func headsGraph(h []history.Snapshot) history.Graph {
	g := history.Graph{}
	for _, s := range h {
		g[s.ID] = s
	}
	return g
}

// scopeLooksEmpty reports, without a walk, whether nothing of the scope is
// here: every include entry missing or an empty folder (a reinstalled
// launcher, a deleted saves folder with nothing else synced).
func (s *session) scopeLooksEmpty() bool {
	for _, inc := range s.scope.Include {
		name := s.live(strings.TrimSuffix(inc, "/"))
		fi, err := os.Lstat(name)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			return false
		}
		f, err := os.Open(name)
		if err != nil {
			return false
		}
		names, _ := f.Readdirnames(1)
		f.Close()
		if len(names) > 0 {
			return false
		}
	}
	return true
}

// newInListing reports whether the listing holds a snapshot this computer
// has never seen, or a restore was interrupted.
func (s *session) newInListing(l remote.Listing) bool {
	if s.state.Restoring != "" {
		return true
	}
	for id := range l.Snapshots {
		if _, ok := s.state.Known[id]; !ok {
			return true
		}
	}
	return false
}
