package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// A restore has two phases (DESIGN.md, "Transactional pulls"):
//
//  1. Download: restic restores the snapshot into .cloud-sync/staging/,
//     seeded with hard links of the live files it will skip and private
//     copies of those it will update. The pack folder is not written;
//     any failure deletes the staging folder and changes nothing.
//  2. Move: with every file downloaded, the state records a journal (the
//     staged files to move, the files to delete), then each staged file
//     is renamed over its live path and the deletions are made. A run that
//     finds the journal finishes it, without the server. Renames are
//     atomic, so each file is its old version or the snapshot's.

// StageError is a restore that failed before it changed anything in the
// pack folder: the player can play the files as they are.
type StageError struct{ Err error }

func (e *StageError) Error() string { return e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

// DiskFullError is a restore that needs more space than the disk has.
type DiskFullError struct {
	Path       string // the pack folder
	Need, Free int64
}

func (e *DiskFullError) Error() string {
	if e.Need <= 0 {
		return fmt.Sprintf("disk full on %s (%s free); free some space, the next pull tries again", e.Path, ui.HumanBytes(e.Free))
	}
	return fmt.Sprintf("disk full: %s needed on %s, %s free; free some space, the next pull tries again", ui.HumanBytes(e.Need), e.Path, ui.HumanBytes(e.Free))
}

// restorePlan is what a restore writes and deletes.
type restorePlan struct {
	want    map[string]snapItem // files to have, with the snapshot's size and mtime
	deletes []string            // live files the snapshot lacks
	notes   []string            // one line each for the player
}

// planRestore picks the snapshot's files that both this computer and the
// snapshot's maker sync, and the live files in both scopes that the
// snapshot lacks (deleted there). A file the maker does not sync is not
// deleted here: not syncing a world is not deleting it.
func (s *session) planRestore(id string, items map[string]snapItem, cur scope.Manifest) restorePlan {
	maker, partial, recorded := s.makerScope(id)
	syncs := func(rel string) bool { return !recorded || maker.InScope(rel) }
	p := restorePlan{want: map[string]snapItem{}}
	var links []string
	for rel, it := range items {
		if it.Type == "dir" || !s.scope.InScope(rel) || !syncs(rel) {
			continue
		}
		if it.Type != "file" {
			links = append(links, rel)
			continue
		}
		p.want[rel] = it
	}
	for rel := range cur {
		if _, ok := items[rel]; ok || !syncs(rel) {
			continue // in the snapshot (a file, or a folder the move puts aside), or not synced there
		}
		p.deletes = append(p.deletes, rel)
	}
	if partial && len(p.deletes) > 0 {
		p.notes = append(p.notes, fmt.Sprintf("kept %d files the cloud version lacks: snapshot %s does not record exactly which files its computer synced (its packwiz list was too long)", len(p.deletes), short(id)))
		p.deletes = nil
	}
	sort.Strings(p.deletes)
	if len(links) > 0 {
		sort.Strings(links)
		p.notes = append(p.notes, fmt.Sprintf("not restored: %s (symlinks and other special files are not synced; only regular files and folders are)", strings.Join(firstN(links, 3), ", ")))
	}
	return p
}

// withoutHazards leaves out of p the worlds and files whose names this
// OS cannot hold: none of their files is written or deleted here, and the
// player is told which and why.
func withoutHazards(p restorePlan, hazards []scope.Hazard) restorePlan {
	if len(hazards) == 0 {
		return p
	}
	units := scope.HazardUnits(hazards)
	under := func(rel string) bool {
		for _, u := range units {
			if scope.UnderUnit(rel, u) {
				return true
			}
		}
		return false
	}
	for rel := range p.want {
		if under(rel) {
			delete(p.want, rel)
		}
	}
	p.deletes = slices.DeleteFunc(p.deletes, under)
	for _, h := range hazards {
		what := h.Unit
		if w, ok := strings.CutPrefix(h.Unit, "saves/"); ok && !strings.Contains(w, "/") {
			what = fmt.Sprintf("world %q", w)
		}
		p.notes = append(p.notes, fmt.Sprintf("%s is not restored: %s; rename it on the computer that made it (this computer keeps its own copy, if any, and does not sync it until then)", what, h.Reason))
	}
	return p
}

// leaveOut makes the --include paths include (from restoreIncludes)
// leave out units: a path holding a unit is replaced by its children that
// hold files (relative paths), down to the unit's own folder, so restic
// never even creates a unit's name.
func leaveOut(include, files, units []string) []string {
	if len(units) == 0 {
		return include
	}
	inc := map[string]bool{}
	for _, e := range include {
		inc[strings.TrimPrefix(e, "/")] = true
	}
	children := func(dir string) []string {
		seen := map[string]bool{}
		var out []string
		for _, f := range files {
			rest, ok := strings.CutPrefix(f, dir+"/")
			if !ok {
				continue
			}
			c := dir + "/" + strings.SplitN(rest, "/", 2)[0]
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
		return out
	}
	for _, u := range units {
		parts := strings.Split(u, "/")
		for i := 1; i < len(parts); i++ {
			a := strings.Join(parts[:i], "/")
			if inc[a] {
				delete(inc, a)
				for _, c := range children(a) {
					inc[c] = true
				}
			}
		}
		delete(inc, u)
	}
	out := make([]string, 0, len(inc))
	for e := range inc {
		out = append(out, "/"+e)
	}
	sort.Strings(out)
	return out
}

// includePatterns are restic's --include patterns for the snapshot paths
// includes: each matches its path alone (restic.LiteralPattern), so a
// name such as "World [1]" or "**" selects that name and nothing else. A
// path restic cannot name literally (a backslash on Windows, where no
// such name can be written) has "?" for each pattern character, which
// matches it and perhaps a sibling.
func includePatterns(includes []string) []string {
	glob := strings.NewReplacer("*", "?", "[", "?", "\\", "?")
	out := make([]string, len(includes))
	for i, p := range includes {
		lit, ok := restic.LiteralPattern(p)
		if !ok {
			lit = glob.Replace(p)
		}
		out[i] = lit
	}
	return out
}

func firstN(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(list[:n:n], fmt.Sprintf("and %d more", len(list)-n))
}

// stage downloads the files of want into the staging folder and returns
// those that differ from the live files (to be moved into place).
//
// restic 0.18.1 restores in place: with --overwrite if-changed it skips a
// file whose size and mtime match and rewrites only the blocks that
// differ in any other. A staged file that restic skips may be a hard link
// of the live file (no copy, no write: it stays the live file). One it
// updates must not be: restic replaces a file with several links by an
// empty one and then writes only the blocks that differ, losing the rest.
// Those are private copies, with an mtime that never matches, so restic
// compares them block by block. A file trusted says false for is never
// linked: its content is compared.
func (s *session) stage(ctx context.Context, id string, items, want map[string]snapItem, trusted func(rel string) bool) ([]string, error) {
	st := s.paths.Staging()
	if err := removeTree(st); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(st, 0o700); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	type seed struct {
		live fs.FileInfo
		link bool
	}
	seeds := make(map[string]seed, len(paths))
	var need int64
	for _, p := range paths {
		it := want[p]
		fi, err := os.Lstat(s.live(p))
		if err != nil || !fi.Mode().IsRegular() {
			need += it.Size
			continue
		}
		link := fi.Size() == it.Size && fi.ModTime().Equal(it.MTime) && trusted(p)
		seeds[p] = seed{fi, link}
		if !link {
			need += max(it.Size, fi.Size())
		}
	}
	if free, ok := diskFree(st); ok && need > free {
		return nil, &DiskFullError{Path: s.opt.PackFolder, Need: need, Free: free}
	}
	// restic restores only what the --include patterns select. When the
	// files to download take few patterns (the usual pull: a few files
	// changed), restic never sees the others, and they need no links;
	// else it is given whole folders and skips the linked files.
	download := func(p string) bool { _, ok := want[p]; return ok && !seeds[p].link }
	var downloads []string
	for _, p := range paths {
		if download(p) {
			downloads = append(downloads, p)
		}
	}
	if plan, ok := s.planDirect(ctx, downloads, want); ok {
		if err := s.fetchDirect(ctx, st, plan, want, need); err != nil {
			return nil, err
		}
		s.fault("restored")
		s.dropStaleLocks(ctx)
		return s.syncStaged(ctx, downloads, need)
	}
	includes, exact := s.includePaths(items, download)
	if !exact {
		includes = s.restoreIncludes(items, want)
	}
	if len(includes) == 0 {
		// Every file is here already (the snapshot only deleted files, or
		// nothing this computer syncs changed): restic has nothing to do.
		return nil, nil
	}
	made := map[string]bool{}
	for _, p := range paths {
		sd, seeded := seeds[p]
		if exact && (!seeded || sd.link) {
			continue // restic creates what it downloads; linked files are left out
		}
		dst := filepath.Join(st, filepath.FromSlash(p))
		if d := filepath.Dir(dst); !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, s.diskError(err, need)
			}
			made[d] = true
		}
		if !seeded {
			continue
		}
		if sd.link {
			if os.Link(s.live(p), dst) == nil {
				continue
			}
			sd.link = false // another file system, or no hard links: a copy
			seeds[p] = sd
		}
		if err := copyStale(s.live(p), dst); err != nil {
			if isDiskFull(err) {
				return nil, s.diskError(err, need)
			}
			os.Remove(dst) // unreadable: restic downloads it whole
			delete(seeds, p)
		}
	}
	s.fault("seeded")
	rc, err := s.resticClient(ctx)
	if err != nil {
		return nil, err
	}
	if includes = leaveOut(includes, paths, s.state.Unportable); len(includes) == 0 {
		return nil, nil
	}
	u := s.opt.UI
	u.ProgressStart("pull")
	err = rc.Restore(ctx, id, restic.RestoreOptions{Target: st, Includes: includePatterns(includes)},
		func(st restic.Status) { u.ProgressUpdate(progressOf("pull", st)) })
	u.ProgressDone()
	if err != nil {
		return nil, s.diskError(err, need)
	}
	s.fault("restored")
	var moves []string
	for _, p := range paths {
		if exact && seeds[p].link {
			continue // not downloaded: the live file is the snapshot's
		}
		fi, err := os.Lstat(filepath.Join(st, filepath.FromSlash(p)))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != want[p].Size {
			return nil, fmt.Errorf("restic did not restore %s as snapshot %s has it; nothing was changed", p, short(id))
		}
		if sd := seeds[p]; sd.link {
			if os.SameFile(fi, sd.live) {
				continue // skipped by restic: it is the live file
			}
			// restic rewrote a linked file: the live file changed after
			// it was compared, and what restic wrote cannot be trusted.
			return nil, fmt.Errorf("%s changed during the pull; nothing was changed, pull again", p)
		}
		moves = append(moves, p)
	}
	return s.syncStaged(ctx, moves, need)
}

// syncStaged puts the staged files moves on disk and returns them. The
// journal promises that every staged file is complete: on disk before it
// is written, so a power loss cannot leave an empty file where the
// snapshot's was renamed.
func (s *session) syncStaged(ctx context.Context, moves []string, need int64) ([]string, error) {
	st := s.paths.Staging()
	err := parallel(ctx, len(moves), func(_ context.Context, i int) error {
		return syncFile(filepath.Join(st, filepath.FromSlash(moves[i])))
	})
	if err != nil {
		return nil, s.diskError(err, need)
	}
	return moves, nil
}

// live is the path in the pack folder of rel.
func (s *session) live(rel string) string {
	return filepath.Join(s.opt.PackFolder, filepath.FromSlash(rel))
}

// diskError turns running out of space (restic's or ours) into a
// DiskFullError naming the pack folder; other errors pass unchanged.
func (s *session) diskError(err error, need int64) error {
	if !isDiskFull(err) {
		return err
	}
	free, _ := diskFree(s.paths.Dir())
	if need <= free {
		need = 0 // the estimate was wrong; say only what is free
	}
	return &DiskFullError{Path: s.opt.PackFolder, Need: need, Free: free}
}

func isDiskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	var re *restic.Error
	if errors.As(err, &re) {
		for _, m := range append([]string{re.Message}, re.Items...) {
			m = strings.ToLower(m)
			if strings.Contains(m, "no space left on device") || strings.Contains(m, "not enough space on the disk") {
				return true
			}
		}
	}
	return false
}

// copyStale copies src to dst with an mtime no snapshot has (the epoch),
// so restic compares its content instead of trusting size and mtime.
func copyStale(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, time.Unix(0, 0), time.Unix(0, 0))
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && runtime.GOOS != "windows" {
		// (Windows flushes only handles opened for writing; NTFS
		// journals the rename after the data it wrote.)
		return err
	}
	return nil
}

// newDisplacedDir makes the folder in displaced (created if need be)
// that a restore moves what stood in its way into: named by the time to
// the second, with "-2", "-3"... when a restore in the same second
// already has that name (its moves must not meet this one's).
func newDisplacedDir(displaced string, now time.Time) (string, error) {
	if err := os.MkdirAll(displaced, 0o700); err != nil {
		return "", err
	}
	stamp := now.UTC().Format("20060102-150405")
	for i := 1; ; i++ {
		name := stamp
		if i > 1 {
			name = fmt.Sprintf("%s-%d", stamp, i)
		}
		dir := filepath.Join(displaced, name)
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) || i == 1000 {
			return "", err
		}
	}
}

// finishJournal runs the move phase of the restore in the state's journal
// and records the sync. It is safe to run again after any interruption.
func (s *session) finishJournal() error {
	j := s.state.Journal
	st := s.paths.Staging()
	dir := ""          // this run's folder in displaced/, made at its first move
	var moved []string // of what stood in the way, for the player
	put := func(rel, why string) error {
		if dir == "" {
			var err error
			if dir, err = newDisplacedDir(s.paths.Displaced(), time.Now()); err != nil {
				return fmt.Errorf("moving %s aside (%s): %w", rel, why, err)
			}
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := renameForce(s.live(rel), dst); err != nil {
			return fmt.Errorf("moving %s aside (%s): %w", rel, why, err)
		}
		moved = append(moved, fmt.Sprintf("%s %s; it is kept in %s", rel, why, dst))
		return nil
	}
	dirOK := map[string]bool{"": true, ".": true}
	// parents makes the folders above rel real folders: a file, symlink
	// or anything else in the way is moved aside (never written through).
	parents := func(rel string) error {
		dir := path.Dir(rel)
		if dirOK[dir] {
			return nil
		}
		parts := strings.Split(dir, "/")
		for i := range parts {
			d := strings.Join(parts[:i+1], "/")
			if dirOK[d] {
				continue
			}
			fi, err := os.Lstat(s.live(d))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return err
			case fi.IsDir():
				dirOK[d] = true
				continue
			default:
				what := "was a file"
				if fi.Mode()&fs.ModeSymlink != 0 {
					what = "was a symlink"
				}
				if err := put(d, what+" here and is a folder in the cloud version"); err != nil {
					return err
				}
			}
			if err := os.Mkdir(s.live(d), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			dirOK[d] = true
		}
		return nil
	}
	for _, rel := range j.Deletes {
		fi, err := os.Lstat(s.live(rel))
		if err != nil || !fi.Mode().IsRegular() {
			continue // gone already, or no longer the file the walk saw
		}
		if !s.realParents(rel) {
			continue // a folder above was replaced by a symlink since
		}
		if err := removeForce(s.live(rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.moveError(fmt.Errorf("removing %s (not in the snapshot): %w", rel, err))
		}
		s.pruneEmptyDirs(rel)
	}
	for i, rel := range j.Moves {
		src := filepath.Join(st, filepath.FromSlash(rel))
		if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
			continue // moved by the interrupted run
		}
		if err := parents(rel); err != nil {
			return s.moveError(err)
		}
		if fi, err := os.Lstat(s.live(rel)); err == nil && !fi.Mode().IsRegular() {
			what := "was a folder"
			if fi.Mode()&fs.ModeSymlink != 0 {
				what = "was a symlink"
			}
			if err := put(rel, what+" here and is a file in the cloud version"); err != nil {
				return s.moveError(err)
			}
		}
		if err := renameForce(src, s.live(rel)); err != nil {
			return s.moveError(fmt.Errorf("putting %s in place: %w", rel, err))
		}
		s.fault(fmt.Sprintf("moved:%d", i+1))
	}
	for _, m := range moved {
		s.opt.UI.Warn(m)
	}
	if j.Merge {
		// Some units of a head merged in: the last sync and its manifest
		// stay (what changed here since is still to push), and the next
		// push names the head as a base.
		s.state.RecordMerge(j.Snapshot)
	} else {
		after, _, err := s.walk()
		if err != nil {
			return err
		}
		s.state.SetManifest(after)
		s.state.RecordSync(j.Snapshot, time.Now().UTC())
	}
	if err := s.save(); err != nil {
		return err
	}
	removeTree(st)
	return nil
}

// moveError is a move that could not go on: the journal stays, and the
// next run tries again.
func (s *session) moveError(err error) error {
	err = permissionError(err)
	return fmt.Errorf("%w; each file is either its old version or the cloud version, and the next pull or push finishes the restore", err)
}

// realParents reports whether every folder above rel is a real folder,
// not a symlink.
func (s *session) realParents(rel string) bool {
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		fi, err := os.Lstat(s.live(dir))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// resumeJournal finishes a restore whose move phase was interrupted, and
// drops the staging folder of one interrupted while downloading.
func (s *session) resumeJournal() error {
	if s.state.Journal == nil {
		if _, err := os.Lstat(s.paths.Staging()); err == nil {
			removeTree(s.paths.Staging())
		}
		return nil
	}
	j := s.state.Journal
	s.opt.UI.Info("finishing the interrupted restore of " + short(j.Snapshot))
	err := s.finishJournal()
	if err == nil || s.state.Journal == nil {
		return err
	}
	// A move that keeps failing must not hold back every later pull (a
	// newer version could never be restored). Each file is its old
	// version or the snapshot's; the last sync stays the one before, so
	// the files already moved count as this computer's changes: never
	// overwritten without asking, pushed or kept by the player's choice.
	j.Failed++
	if j.Failed < maxMoveTries {
		if serr := s.save(); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	s.state.Journal, s.state.Restoring = nil, ""
	if serr := s.save(); serr != nil {
		return errors.Join(err, serr)
	}
	removeTree(s.paths.Staging())
	s.opt.UI.Warn(fmt.Sprintf("gave up the restore of %s after %d tries (%v); the files it put in place count as changes on this computer", short(j.Snapshot), maxMoveTries, err))
	return nil
}

// maxMoveTries is how many runs try to finish a restore's move.
const maxMoveTries = 3

// renameForce is os.Rename that gets past read-only files and folders:
// it makes the target (Windows) or the folders (elsewhere) writable for
// the rename and gives the folders their mode back.
func renameForce(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	undo := makeWritable(filepath.Dir(src), filepath.Dir(dst), dst)
	defer undo()
	return os.Rename(src, dst)
}

// removeForce is os.Remove that gets past a read-only file or folder.
func removeForce(name string) error {
	err := os.Remove(name)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	undo := makeWritable(filepath.Dir(name), name)
	defer undo()
	return os.Remove(name)
}

// makeWritable adds owner write permission to the existing names and
// returns a function that puts back the folders' modes.
func makeWritable(names ...string) (undo func()) {
	var restore []func()
	for _, n := range names {
		fi, err := os.Lstat(n)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 || fi.Mode().Perm()&0o200 != 0 {
			continue
		}
		if os.Chmod(n, fi.Mode().Perm()|0o200) == nil && fi.IsDir() {
			restore = append(restore, func() { os.Chmod(n, fi.Mode().Perm()) })
		}
	}
	return func() {
		for _, r := range restore {
			r()
		}
	}
}

// fault is the fault-injection point of tests (Options.Fault).
func (s *session) fault(point string) {
	if s.opt.Fault != nil {
		s.opt.Fault(point)
	}
}

// makerScope is the effective scope of the computer that made snapshot
// id, as its tag records it; ok is false for a snapshot that records none
// (made by an earlier build), which counts as syncing what this computer
// syncs.
func (s *session) makerScope(id string) (sc scope.Scope, partial, ok bool) {
	rec := s.state.Known[id].Scope
	if rec == nil {
		return scope.Scope{}, false, false
	}
	return scope.Scope{Include: rec.Include, Exclude: rec.Exclude, Packwiz: rec.Packwiz}, rec.Partial, true
}

// scopeRecord is this computer's effective scope as a snapshot records it:
// only the packwiz files inside the include entries matter.
func (s *session) scopeRecord() history.Scope {
	rec := history.Scope{Include: s.scope.Include, Exclude: s.scope.Exclude}
	for _, p := range s.scope.Packwiz {
		if s.scope.Included(p) {
			rec.Packwiz = append(rec.Packwiz, p)
		}
	}
	return rec
}

// permissionError says "permission denied" with the path and the fix;
// other errors pass unchanged.
func permissionError(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	name := ""
	switch {
	case !errors.Is(err, fs.ErrPermission):
		return err
	case errors.As(err, &le):
		name = le.New
	case errors.As(err, &pe):
		name = pe.Path
	default:
		return err
	}
	return fmt.Errorf("permission denied: cannot write %s; give your user write access to the pack folder (%w)", name, err)
}

// removeTree is os.RemoveAll that gets past read-only folders (restic
// gives restored folders the snapshot's modes) and, on Windows, past file
// systems that refuse the POSIX delete os.RemoveAll asks for with
// "Invalid function" (Wine 8, some network shares): there the entries
// are removed one by one, deepest first.
func removeTree(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			if d.IsDir() {
				os.Chmod(p, 0o700)
			}
			paths = append(paths, p)
		}
		return nil
	})
	err := os.RemoveAll(dir)
	if err == nil || runtime.GOOS != "windows" {
		return err
	}
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Remove(paths[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// maxIncludes bounds the patterns restic gets: it matches each against
// every item of the snapshot.
const maxIncludes = 200

// restoreIncludes are the --include paths for a restore of want (files
// of items): includePaths when it can name them, else the
// include entries (and what is not wanted is downloaded and dropped).
func (s *session) restoreIncludes(items, want map[string]snapItem) []string {
	inWant := func(p string) bool { _, ok := want[p]; return ok }
	if out, ok := s.includePaths(items, inWant); ok && len(out) > 0 {
		return out
	}
	out := make([]string, 0, len(s.scope.Include))
	for _, inc := range s.scope.Include {
		out = append(out, "/"+strings.TrimSuffix(inc, "/"))
	}
	return out
}

// includePaths are the --include paths that select exactly the
// files of items that sel picks: the largest folders all of whose items
// are picked, and single files elsewhere, so restic reads nothing else. ok
// is false when that takes more than maxIncludes patterns. They are
// snapshot paths: includePatterns turns them into restic's patterns.
func (s *session) includePaths(items map[string]snapItem, sel func(string) bool) (out []string, ok bool) {
	total, picked := map[string]int{}, map[string]int{}
	children := map[string][]string{}
	for p, it := range items {
		children[path.Dir(p)] = append(children[path.Dir(p)], p)
		if it.Type == "dir" {
			continue
		}
		in := sel(p)
		for a := p; ; a = path.Dir(a) {
			total[a]++
			if in {
				picked[a]++
			}
			if !strings.Contains(a, "/") {
				break
			}
		}
	}
	var walk func(p string) bool
	walk = func(p string) bool {
		switch {
		case picked[p] == 0:
			return true
		case picked[p] == total[p]:
			if len(out) >= maxIncludes {
				return false
			}
			out = append(out, "/"+p)
			return true
		}
		for _, c := range children[p] {
			if !walk(c) {
				return false
			}
		}
		return true
	}
	for _, inc := range s.scope.Include {
		if !walk(strings.TrimSuffix(inc, "/")) {
			return nil, false
		}
	}
	sort.Strings(out)
	return out, true
}

// editedSince returns which files of cur changed since the last sync: all
// of them when this computer never synced or its manifest is unreadable.
func (s *session) editedSince(cur scope.Manifest) func(rel string) bool {
	last := s.lastManifest()
	if last == nil {
		return func(string) bool { return true }
	}
	return func(rel string) bool {
		e, ok := last[rel]
		return !ok || e != cur[rel]
	}
}

// pruneEmptyDirs removes the folders above a deleted file that are now
// empty, up to (not including) the include entry that holds it.
func (s *session) pruneEmptyDirs(p string) {
	for dir := path.Dir(p); dir != "." && s.scope.Included(dir+"/x") && !s.isIncludeRoot(dir); dir = path.Dir(dir) {
		if os.Remove(filepath.Join(s.opt.PackFolder, filepath.FromSlash(dir))) != nil {
			return
		}
	}
}

func (s *session) isIncludeRoot(dir string) bool {
	for _, inc := range s.scope.Include {
		if strings.TrimSuffix(inc, "/") == dir {
			return true
		}
	}
	return false
}
