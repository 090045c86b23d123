package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// mergeCase is a conflict seen unit by unit (DESIGN.md "Per-world
// merge"): the snapshot both sides descend from, each side's files, and
// history.Merge's plan.
type mergeCase struct {
	base  string
	heads []history.Snapshot
	items map[string]map[string]snapItem // each head's items, for its restore
	files map[string]scope.Manifest      // each head's files
	local scope.Manifest                 // this computer's files
	plan  history.MergePlan
}

// merge settles a conflict per unit: the cloud's changed units come in,
// this computer's stay, and only a world changed on both sides needs the
// player. ok is false when the conflict cannot be seen per unit (no
// common snapshot left on the server, this computer never synced, or
// --snapshot picks a whole version): the whole-instance conflict follows.
func (s *session) merge(ctx context.Context, plan history.Plan, cur scope.Manifest, facts scope.Facts, g history.Graph) (r Result, ok bool, err error) {
	if s.opt.Snapshot != "" || s.state.Last == "" || !s.state.Synced() {
		return Result{}, false, nil
	}
	mc, err := s.planMerge(ctx, plan.Heads, cur, g)
	if serverTrouble(err) && !s.opt.OfflineFail {
		r, err := s.offline(err)
		return r, true, err
	}
	if err != nil {
		s.opt.UI.Warn("cannot merge per world (" + err.Error() + "); choose a version of the whole instance")
		return Result{}, false, nil
	}
	if mc == nil {
		return Result{}, false, nil
	}
	if !mc.plan.Conflict() {
		s.opt.UI.Event(ui.DecisionEvent{Action: "merge", Reason: "this computer and the cloud changed different worlds and files"})
		if len(mc.heads) == 1 && !keepsLocal(mc.plan) {
			// This computer's changes are the cloud's too, or none the
			// merge sees (a changed mode): the cloud version whole, after
			// a safety snapshot, with no merge to push.
			r, err = s.resolved(ctx, plan, cur, facts, ui.ChoiceCloud)
			return r, true, err
		}
		r, err = s.runMerge(ctx, mc, cur, facts)
		return r, true, err
	}
	choices, err := s.chooseCollisions(ctx, mc)
	if err != nil {
		return Result{}, true, err
	}
	resolved := resolveCollisions(mc.plan, choices)
	switch {
	case len(mc.heads) == 1 && !keepsLocal(resolved):
		// Nothing of this computer's stays: the cloud version whole, as
		// a whole-instance choice would restore it.
		r, err = s.resolved(ctx, plan, cur, facts, ui.ChoiceCloud)
		return r, true, err
	case !takesCloud(resolved):
		// Nothing of the cloud's comes in: the heads are superseded, as
		// a whole-instance choice would record them (and their
		// computers hear of it).
		r, err = s.resolved(ctx, plan, cur, facts, ui.ChoiceLocal)
		return r, true, err
	}
	mc.plan = resolved
	r, err = s.runMerge(ctx, mc, cur, facts)
	return r, true, err
}

// keepsLocal reports whether a merge keeps anything this computer
// changed.
func keepsLocal(p history.MergePlan) bool {
	if len(p.Keep) > 0 || len(p.Renames) > 0 {
		return true
	}
	for _, pk := range p.Newest {
		if pk.From.Local() {
			return true
		}
	}
	for _, d := range p.Deletions {
		if d.By.Local() {
			return true
		}
	}
	return false
}

// takesCloud reports whether a merge writes anything from the cloud.
func takesCloud(p history.MergePlan) bool {
	if len(p.Take) > 0 || len(p.Renames) > 0 {
		return true
	}
	for _, pk := range p.Newest {
		if !pk.From.Local() {
			return true
		}
	}
	for _, d := range p.Deletions {
		if !d.By.Local() {
			return true
		}
	}
	return false
}

// planMerge reads the trees of the merge base, this computer's last sync,
// the heads it merged since and the heads to merge (in-process, no file
// data) and decides the merge. It returns nil when no snapshot both sides
// descend from is on the server.
func (s *session) planMerge(ctx context.Context, heads []history.Snapshot, cur scope.Manifest, g history.Graph) (*mergeCase, error) {
	parents := append(append([]string{s.state.Last}, s.state.Skipped...), s.state.Merged...)
	base := mergeBase(g, parents, heads)
	if _, synced := g[s.state.Last]; base == "" || !synced {
		return nil, nil
	}
	ids := []string{base}
	for _, id := range append(append([]string{s.state.Last}, s.state.Merged...), headIDs(heads)...) {
		if _, ok := g[id]; ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	// Files the last sync's maker did not sync are not in it: one
	// unchanged here may be in no snapshot, so the merge leaves them be.
	keep := s.mergeScope(append([]string{base, s.state.Last}, headIDs(heads)...))
	items := map[string]map[string]snapItem{}
	for _, id := range ids {
		it, err := s.snapshotItems(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading snapshot %s: %w", short(id), err)
		}
		items[id] = it
	}
	// Each tree's files, one entry per content: files with the same data
	// blobs get the same entry, so the merge's size-and-mtime comparisons
	// compare contents. Modification times alone would not do: a computer
	// on another OS records the same file with a coarser mtime (Windows:
	// 100 ns), and its snapshot would change every file.
	canon := map[string]map[string]scope.Entry{}
	files := map[string]scope.Manifest{}
	for _, id := range ids {
		m := scope.Manifest{}
		for p, it := range items[id] {
			if it.Type != "file" || !keep(p) {
				continue
			}
			key := fmt.Sprint(it.Size, it.Content)
			if canon[p] == nil {
				canon[p] = map[string]scope.Entry{}
			}
			e, ok := canon[p][key]
			if !ok {
				e = scope.Entry{Size: it.Size, MTime: it.MTime.UnixNano(), Mode: it.Mode & 0o777}
				canon[p][key] = e
			}
			m[p] = e
		}
		files[id] = m
	}
	mc := &mergeCase{base: base, heads: heads, items: map[string]map[string]snapItem{}, files: map[string]scope.Manifest{}, local: scope.Manifest{}}
	// This computer's files: one unchanged since the last sync is that
	// snapshot's version; one a merge brought in is that head's when its
	// size matches and its mtime is the head's as this file system keeps
	// it (within a microsecond); anything else as the walk saw it.
	edited := s.editedSince(cur)
	for p, e := range cur {
		if !keep(p) {
			continue
		}
		if l, ok := files[s.state.Last][p]; ok && !edited(p) {
			e = l
		} else {
			for _, m := range s.state.Merged {
				if f, ok := files[m][p]; ok && f.Size == e.Size && max(f.MTime-e.MTime, e.MTime-f.MTime) < 1000 {
					e = f
					break
				}
			}
		}
		mc.local[p] = e
	}
	baseFiles := files[base]
	var changes []history.HeadChanges
	for _, h := range heads {
		mc.items[h.ID], mc.files[h.ID] = items[h.ID], files[h.ID]
		changes = append(changes, history.HeadChanges{Side: history.Side{Head: h.ID, Host: h.Host}, Changes: history.ChangesBetween(baseFiles, files[h.ID])})
	}
	// A file edited here since the last sync with the size and
	// modification time a head gives it may still differ in content (two
	// computers saving within one clock tick): the merge must not take
	// the two for the same change. One nanosecond later here makes them
	// differ: a world collides, a newest-wins file keeps this computer's
	// as a tie would, an additive one keeps both.
	for p, e := range mc.local {
		if b, ok := baseFiles[p]; (ok && sameStat(b, e)) || !edited(p) {
			continue
		}
		for _, h := range heads {
			if f, ok := mc.files[h.ID][p]; ok && sameStat(f, e) {
				e.MTime++
				mc.local[p] = e
				break
			}
		}
	}
	var err error
	mc.plan, err = history.Merge(history.MergeInput{Base: baseFiles, Local: mc.local, Heads: changes, Rules: instance.MergeRules(s.scope.Merge)})
	if err != nil {
		return nil, err
	}
	return mc, nil
}

// sameStat reports whether two entries have the size and modification
// time the merge compares.
func sameStat(a, b scope.Entry) bool { return a.Size == b.Size && a.MTime == b.MTime }

// mergeScope reports whether a file is in this computer's scope and in
// that of every snapshot's maker: a file one of them does not sync is
// left out of the merge, neither written nor deleted.
func (s *session) mergeScope(ids []string) func(rel string) bool {
	var makers []scope.Scope
	for _, id := range ids {
		if sc, _, ok := s.makerScope(id); ok {
			makers = append(makers, sc)
		}
	}
	return func(rel string) bool {
		if !s.scope.InScope(rel) {
			return false
		}
		for _, m := range makers {
			if !m.InScope(rel) {
				return false
			}
		}
		return true
	}
}

// mergeBase is the snapshot the merge compares both sides with: an
// ancestor of this computer's files (parents: its last sync and the heads
// it skipped or merged since) and of every head, the nearest one (no
// other such ancestor descends from it), the newest if several. "" when
// there is none on the server.
func mergeBase(g history.Graph, parents []string, heads []history.Snapshot) string {
	common := ancestors(g, parents)
	for _, h := range heads {
		of := ancestors(g, []string{h.ID})
		maps.DeleteFunc(common, func(id string, _ bool) bool { return !of[id] })
	}
	var nearest []history.Snapshot
	for id := range common {
		below := false
		for other := range common {
			if other != id && g.Descends(other, id) {
				below = true
				break
			}
		}
		if !below {
			nearest = append(nearest, g[id])
		}
	}
	if len(nearest) == 0 {
		return ""
	}
	history.SortNewestFirst(nearest)
	return nearest[0].ID
}

// ancestors is ids and every snapshot they descend from, of those on the
// server.
func ancestors(g history.Graph, ids []string) map[string]bool {
	out := map[string]bool{}
	stack := slices.Clone(ids)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		sn, ok := g[id]
		if !ok || out[id] {
			continue
		}
		out[id] = true
		stack = append(stack, sn.Bases...)
	}
	return out
}

// chooseCollisions decides the worlds changed on both sides, and only
// those, each on its own: --prefer=cloud:NAME or local:NAME, else
// --prefer, else the player, one world at a time. It returns the choice
// per unit path.
func (s *session) chooseCollisions(ctx context.Context, mc *mergeCase) (map[string]ui.Choice, error) {
	s.opt.UI.Event(ui.DecisionEvent{Action: history.Conflict.String(), Reason: collisionReason(mc.plan.Collisions)})
	choices := map[string]ui.Choice{}
	var open []history.Collision
	for _, c := range mc.plan.Collisions {
		prefer := s.opt.PreferWorlds[c.Unit.Name()]
		if prefer == "" {
			prefer = s.opt.Prefer
		}
		switch prefer {
		case "cloud":
			choices[c.Unit.Path] = ui.ChoiceCloud
		case "local":
			choices[c.Unit.Path] = ui.ChoiceLocal
		default:
			open = append(open, c)
		}
	}
	if len(open) == 0 {
		return choices, nil
	}
	reason := collisionReason(open)
	all := s.collisionConflict(mc, open)
	s.opt.UI.Event(ui.ConflictEvent{Reason: reason, Heads: headIDs(mc.heads), Instance: all.Instance, Local: all.Local, Cloud: all.Cloud})
	for _, c := range open {
		one := all
		if len(open) > 1 {
			one = s.collisionConflict(mc, []history.Collision{c})
		}
		choice, err := s.opt.UI.Conflict(ctx, one)
		if errors.Is(err, ui.ErrHeadless) {
			for _, line := range ui.DescribeConflict(all) {
				s.opt.UI.Info(line)
			}
			return nil, &ConflictError{Reason: reason, Heads: mc.heads, PerWorld: true}
		}
		if err != nil && !errors.Is(err, ui.ErrCancelled) {
			return nil, err
		}
		if choice != ui.ChoiceCloud && choice != ui.ChoiceLocal {
			return nil, ErrCancelled
		}
		choices[c.Unit.Path] = choice
	}
	return choices, nil
}

// collisionReason names the colliding units and the sides that changed
// them: "Skyblock changed on this computer and on laptop", or "the cloud
// has several versions of Skyblock (...)" when this computer did not.
func collisionReason(cols []history.Collision) string {
	var names, sides []string
	local := false
	for _, c := range cols {
		names = append(names, c.Unit.Name())
		for _, v := range c.Versions {
			local = local || v.Side.Local()
			if n := v.Side.Name(); !slices.Contains(sides, n) {
				sides = append(sides, n)
			}
		}
	}
	if !local {
		return "the cloud has several versions of " + joinAnd(names) + " (played on " + strings.Join(sides, " and on ") + " without syncing)"
	}
	return joinAnd(names) + " changed on " + strings.Join(sides, " and on ")
}

// joinAnd joins "a", "a and b", "a, b and c".
func joinAnd(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// collisionConflict is the conflict dialog's facts for the colliding
// units cols only: per side, the files and bytes of its versions of them.
func (s *session) collisionConflict(mc *mergeCase, cols []history.Collision) ui.Conflict {
	c := ui.Conflict{Instance: s.label(), Local: ui.Side{Host: s.opt.Hostname, Label: s.label()}, Merges: true}
	cloud := map[string]*ui.Side{}
	for _, h := range mc.heads {
		cloud[h.ID] = &ui.Side{SnapshotID: h.ID, Host: h.Host, Label: h.Label, Time: h.Time}
	}
	for _, col := range cols {
		for _, v := range col.Versions {
			side := &c.Local
			if !v.Side.Local() {
				side = cloud[v.Side.Head]
			} else if v.Modified.After(side.Time) {
				side.Time = v.Modified
			}
			if side == nil {
				continue
			}
			side.Files += v.Files
			side.Size += v.Bytes
			if !slices.Contains(side.Worlds, col.Unit.Name()) {
				side.Worlds = append(side.Worlds, col.Unit.Name())
			}
		}
	}
	for _, h := range mc.heads {
		if len(cloud[h.ID].Worlds) > 0 {
			c.Cloud = append(c.Cloud, *cloud[h.ID])
		}
	}
	return c
}

// resolveCollisions turns the choices (per unit path) into picks: cloud
// takes the unit from the newest head that changed it; local keeps this
// computer's version.
func resolveCollisions(p history.MergePlan, choices map[string]ui.Choice) history.MergePlan {
	for _, c := range p.Collisions {
		local := choices[c.Unit.Path] == ui.ChoiceLocal
		v := c.Versions[0]
		for _, w := range c.Versions {
			if w.Side.Local() == local {
				v = w
				break
			}
		}
		if local && !v.Side.Local() {
			// Two heads changed it and this computer did not: its files
			// are the last sync's, and stay.
			v = history.Version{Side: history.Side{}}
		}
		switch {
		case v.Deleted:
			p.Deletions = append(p.Deletions, history.Deletion{Unit: c.Unit, By: v.Side})
		case v.Side.Local():
			p.Keep = append(p.Keep, history.Pick{Unit: c.Unit, From: v.Side})
		default:
			p.Take = append(p.Take, history.Pick{Unit: c.Unit, From: v.Side})
		}
	}
	p.Collisions = nil
	byUnit := func(a, b history.Pick) int { return strings.Compare(a.Unit.Path, b.Unit.Path) }
	slices.SortFunc(p.Keep, byUnit)
	slices.SortFunc(p.Take, byUnit)
	slices.SortFunc(p.Deletions, func(a, b history.Deletion) int { return strings.Compare(a.Unit.Path, b.Unit.Path) })
	return p
}

// mergeStep is what a merge writes from one head.
type mergeStep struct {
	want    map[string]snapItem // files to have as the head has them
	deletes []string            // local files to delete
	renames map[string]string   // files of want written under another name
}

// runMerge carries out the plan: a safety snapshot when a file changed
// here since the last sync is replaced, then each head's units through
// the restore's staging folder and journal, then the heads are recorded
// as merged (the next push names them as bases).
func (s *session) runMerge(ctx context.Context, mc *mergeCase, cur scope.Manifest, facts scope.Facts) (Result, error) {
	p := mc.plan
	steps := map[string]*mergeStep{}
	step := func(head string) *mergeStep {
		if steps[head] == nil {
			steps[head] = &mergeStep{want: map[string]snapItem{}, renames: map[string]string{}}
		}
		return steps[head]
	}
	take := func(u history.Unit, head string) {
		st, files := step(head), mc.files[head]
		for _, f := range unitFiles(files, u) {
			st.want[f] = mc.items[head][f]
		}
		for _, f := range unitFiles(mc.local, u) {
			if _, ok := files[f]; !ok {
				st.deletes = append(st.deletes, f)
			}
		}
	}
	for _, pk := range append(slices.Clone(p.Take), p.Newest...) {
		if !pk.From.Local() {
			take(pk.Unit, pk.From.Head)
		}
	}
	for _, d := range p.Deletions {
		if !d.By.Local() {
			st := step(d.By.Head)
			st.deletes = append(st.deletes, unitFiles(mc.local, d.Unit)...)
		}
	}
	for _, rn := range p.Renames {
		st := step(rn.From.Head)
		st.want[rn.Path] = mc.items[rn.From.Head][rn.Path]
		st.renames[rn.Path] = rn.To
	}
	edited := s.editedSince(cur)
	replaces := false
	for _, st := range steps {
		for f := range st.want {
			if _, renamed := st.renames[f]; !renamed {
				if _, here := cur[f]; here && edited(f) {
					replaces = true
				}
			}
		}
		for _, f := range st.deletes {
			replaces = replaces || edited(f)
		}
	}
	msg := p.Summary()
	if replaces {
		// Files changed here since the last sync are replaced: the
		// player's choice, or the newer version of a file.
		safety, err := s.safety(ctx, cur, facts)
		if err != nil {
			return Result{}, err
		}
		if safety != "" {
			msg += "; this computer's files are kept in safety snapshot " + short(safety)
		}
	}
	for _, h := range mc.heads {
		if st := steps[h.ID]; st != nil && (len(st.want) > 0 || len(st.deletes) > 0) {
			if err := s.restoreUnits(ctx, h.ID, mc.items[h.ID], st, edited); err != nil {
				return s.notRestored(err)
			}
		}
	}
	for _, h := range mc.heads {
		s.state.Merged = appendUnique(s.state.Merged, h.ID)
	}
	if err := s.save(); err != nil {
		return Result{}, err
	}
	return s.done(Result{Action: ActionMerged, Snapshot: s.state.Last, Message: msg})
}

// unitFiles lists the files of man that belong to unit u.
func unitFiles(man scope.Manifest, u history.Unit) []string {
	var out []string
	for p := range man {
		if p == u.Path || (strings.HasSuffix(u.Path, "/") && strings.HasPrefix(p, u.Path)) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// restoreUnits writes one head's part of a merge through the restore's
// two phases (staging.go): download into the staging folder, then a
// journal and the moves. The journal is marked as a merge, so finishing
// it (now or after a kill) records the head as merged and keeps the last
// sync.
func (s *session) restoreUnits(ctx context.Context, id string, items map[string]snapItem, st *mergeStep, edited func(string) bool) error {
	if err := checkOpenWorlds(s.opt.PackFolder); err != nil {
		return err
	}
	plan := restorePlan{want: st.want, deletes: st.deletes}
	// Names this OS cannot hold, among the units this merge writes (the
	// head's others stay as they are here, and are not mentioned).
	var hazards []scope.Hazard
	for _, h := range scope.NameHazards(slices.Collect(maps.Keys(items)), runtime.GOOS) {
		touched := slices.ContainsFunc(plan.deletes, func(rel string) bool { return scope.UnderUnit(rel, h.Unit) })
		for rel := range plan.want {
			touched = touched || scope.UnderUnit(rel, h.Unit)
		}
		if touched {
			hazards = append(hazards, h)
		}
	}
	plan = withoutHazards(plan, hazards)
	for _, n := range plan.notes {
		s.opt.UI.Warn(n)
	}
	// A renamed copy's source is never the live file of that name (both
	// sides changed it), and a file edited here is compared by content.
	trusted := func(rel string) bool {
		_, renamed := st.renames[rel]
		return !renamed && !edited(rel)
	}
	moves, err := s.stage(ctx, id, items, plan.want, trusted)
	if err == nil {
		moves, err = s.renameStaged(moves, st.renames)
	}
	if err != nil {
		removeTree(s.paths.Staging())
		return &StageError{permissionError(err)}
	}
	s.fault("staged")
	slices.Sort(plan.deletes)
	s.state.Journal = &instance.Journal{Snapshot: id, Moves: moves, Deletes: plan.deletes, Merge: true}
	if err := s.save(); err != nil {
		s.state.Journal = nil
		removeTree(s.paths.Staging())
		return err
	}
	return s.finishJournal()
}

// renameStaged moves the staged files that are renamed copies to their
// new names inside the staging folder, so the journal moves them there.
func (s *session) renameStaged(moves []string, renames map[string]string) ([]string, error) {
	if len(renames) == 0 {
		return moves, nil
	}
	st := s.paths.Staging()
	out := slices.Clone(moves)
	for i, m := range out {
		to, ok := renames[m]
		if !ok {
			continue
		}
		dst := filepath.Join(st, filepath.FromSlash(to))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(st, filepath.FromSlash(m)), dst); err != nil {
			return nil, err
		}
		out[i] = to
	}
	return out, nil
}
