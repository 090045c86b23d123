package engine

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/worldlock"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/repofile"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/resticbin"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// session is one opened, opted-in instance.
type session struct {
	opt    Options
	paths  instance.Paths
	cfg    instance.Config
	token  instance.Token
	server remote.Server
	scope  scope.Scope // baseScope without the names this OS cannot hold (state.Unportable)
	// baseScope is the scope scope.json and packwiz make.
	baseScope scope.Scope
	state     instance.State
	lock      *instance.Lock
	restic    *restic.Client // nil until needed
	// ahead is what resticClient needs from the server, fetched while
	// the session does other things (prefetchRestic).
	ahead *resticAhead
	// snapFiles keeps the snapshot files readSnapshots downloaded, so a
	// restore that reads the same snapshot's trees does not fetch it again.
	snapMu    sync.Mutex
	snapFiles map[string][]byte
	// treesAhead is the repository's tree index being read ahead
	// (prefetchTrees).
	treesAhead *treesAhead
	// firstListing and newRepo are what a first push prepared before its
	// walk (prepareFirstPush): the listing, and when the cloud had no
	// repository, the one to create.
	firstListing *remote.Listing
	newRepo      *repofile.NewRepository
}

// resticAhead is the server's key list and whether it holds locks, read
// in parallel.
type resticAhead struct {
	done    chan struct{}
	keys    []string
	keysErr error
	locks   bool
}

// prefetchRestic starts reading what resticClient needs (two requests,
// in parallel), so that it costs no round trip of its own when a session
// knows early that restic will run.
func (s *session) prefetchRestic(ctx context.Context) {
	if s.restic != nil || s.ahead != nil {
		return
	}
	a := &resticAhead{done: make(chan struct{})}
	s.ahead = a
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.keys, a.keysErr = s.server.ListKeys(ctx, s.cfg.InstanceID)
	}()
	go func() {
		defer wg.Done()
		a.locks = s.locksOnServer(ctx)
	}()
	go func() {
		wg.Wait()
		close(a.done)
	}()
}

// open loads an opted-in instance and takes its lock. It returns
// instance.ErrNotOptedIn when there is no sync.json, and a
// *NotOriginalError for a copy of an instance that lives elsewhere.
func open(opt Options) (*session, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	s := &session{opt: opt, paths: instance.Paths{Pack: opt.PackFolder}}
	cfg, err := s.paths.LoadConfig()
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	if opt.userDirsErr != nil {
		return nil, opt.userDirsErr
	}
	if _, err := remote.CheckURL(cfg.URL, opt.InsecureHTTP); err != nil {
		return nil, fmt.Errorf("%s: %w", s.paths.Config(), err)
	}
	s.paths.KeyFile = opt.UserDirs.MasterKeyFile(cfg)
	if s.scope, err = s.paths.LoadScope(); err != nil {
		return nil, err
	}
	if s.lock, err = s.paths.AcquireLock(); err != nil {
		return nil, err
	}
	if s.state, err = s.paths.LoadState(); err != nil {
		s.lock.Release()
		return nil, err
	}
	if err := s.checkHome(); err != nil {
		s.lock.Release()
		return nil, err
	}
	if err := s.readToken(); err != nil {
		s.lock.Release()
		return nil, err
	}
	s.baseScope, s.scope = s.scope, s.scope.Without(s.state.Unportable)
	s.paths.RemoveTemps()
	s.server = remote.Server{URL: cfg.URL, User: s.token.User, Password: s.token.Password, Timeout: opt.HTTPTimeout}
	return s, nil
}

// openHook is open for the hooks (pull, push). A copy is not synced as
// the original: the dialogs ask what to do and do it; other UIs get one
// warning line naming the commands. skipped is the result to return when
// nothing is to be synced now.
func openHook(ctx context.Context, opt Options) (s *session, skipped *Result, err error) {
	s, err = open(opt)
	if errors.Is(err, instance.ErrNotOptedIn) {
		return nil, &Result{Action: ActionNotOptedIn}, nil
	}
	var no *NotOriginalError
	if !errors.As(err, &no) {
		return s, nil, err
	}
	skip := &Result{Action: ActionCopy, Message: no.Error()}
	// A program reading --json events tells a skipped copy from a sync
	// or a folder that is not opted in by this event.
	defer func() {
		if skipped != nil {
			opt.UI.Event(ui.DoneEvent{Action: string(ActionCopy), Message: no.Error()})
		}
	}()
	asker, ok := opt.UI.(ui.CopyAsker)
	if !ok {
		opt.UI.Warn(no.Error())
		return nil, skip, nil
	}
	choice, err := asker.AskCopy(ctx, no.question())
	if err != nil {
		opt.UI.Warn(no.Error())
		return nil, skip, nil
	}
	switch choice {
	case ui.CopySame, ui.CopyNew:
		var tok *instance.Token
		if no.Original == "" {
			t, err := loginFor(ctx, opt)
			if err != nil {
				return nil, nil, err
			}
			tok = &t
		}
		if _, err := ResolveCopy(ctx, opt, choice == ui.CopyNew, tok); err != nil {
			return nil, nil, err
		}
		s, err = open(opt)
		return s, nil, err
	case ui.CopyOff:
		if err := Disable(opt); err != nil {
			return nil, nil, err
		}
		opt.UI.Info(`sync is off for this copy; "instance-sync enable" turns it on again`)
	}
	return nil, skip, nil
}

// runHook opens the instance for a hook (openHook), runs flow on it and
// closes it.
func runHook(ctx context.Context, opt Options, flow func(*session) (Result, error)) (Result, error) {
	s, skipped, err := openHook(ctx, opt)
	if skipped != nil {
		return *skipped, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	return flow(s)
}

func (s *session) close() {
	s.unlockLeft()
	s.lock.Release()
}

// readToken reads the token: --token-file when given, else the one kept
// for this instance in the user's config folder. A token an older version
// left in the pack folder is moved there first, with a line saying so.
func (s *session) readToken() error {
	// The master key an older version cached in the pack folder is only a
	// cache: dropped, it is fetched again.
	_ = os.Remove(s.paths.LegacyMasterKey())
	kept := s.opt.UserDirs.TokenFile(s.cfg)
	moved, err := s.paths.MoveLegacyToken(kept, s.cfg.User)
	if err != nil {
		return err
	}
	if moved {
		s.opt.UI.Info("moved the token out of the instance folder to " + kept + " (an exported instance no longer carries it)")
	}
	tokenFile := s.opt.TokenFile
	if tokenFile == "" {
		tokenFile = kept
	}
	if s.token, err = instance.ReadToken(tokenFile); err != nil {
		return err
	}
	if s.token.User != s.cfg.User {
		return &instance.FileError{Path: tokenFile, Problem: fmt.Sprintf("token is for user %q but sync.json names %q", s.token.User, s.cfg.User),
			Fix: `run "instance-sync init --force" with the right token`}
	}
	return nil
}

// label is the instance's name for the player.
func (s *session) label() string {
	return Label(s.opt.Label, s.opt.Getenv, s.cfg.Label, s.cfg.InstanceID)
}

func (s *session) save() error { return s.paths.SaveState(&s.state) }

// walk stats the scope. facts are what else it saw, for backup to choose
// restic's filter.
func (s *session) walk() (m scope.Manifest, facts scope.Facts, err error) {
	return s.scope.WalkFacts(s.opt.PackFolder)
}

// walkFiles is walk keeping the files as scope.Files, a third of a
// Manifest's memory: a push never needs the map.
func (s *session) walkFiles() (*scope.Files, scope.Facts, error) {
	return s.scope.WalkFiles(s.opt.PackFolder, nil)
}

// localChanged compares the scope now (files files, whose digest is
// digest) with the last synced manifest.
func (s *session) localChanged(files int, digest string) bool {
	if !s.state.Synced() {
		return files > 0
	}
	if s.state.ManifestDigest != "" {
		return digest != s.state.ManifestDigest
	}
	if err := s.state.LoadManifest(); err != nil {
		return true // unreadable: treat as changed, which never overwrites
	}
	// Equal digests are equal manifests.
	return s.state.Manifest.Digest() != digest
}

// lastManifest is the manifest of the last sync, decoded; nil if none.
func (s *session) lastManifest() scope.Manifest {
	if err := s.state.LoadManifest(); err != nil {
		return nil
	}
	return s.state.Manifest
}

// graph returns the snapshots present in the repository, decrypting the
// metadata of those this machine has not seen before (one restic run at
// most) and caching it in state.
func (s *session) graph(ctx context.Context, l remote.Listing) (history.Graph, error) {
	var unknown []string
	for id := range l.Snapshots {
		if _, ok := s.state.Known[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		snaps, err := s.snapshotMeta(ctx, unknown)
		if err != nil {
			return nil, err
		}
		if s.state.Known == nil {
			s.state.Known = map[string]history.Snapshot{}
		}
		for _, sn := range snaps {
			meta := history.FromTags(history.Snapshot{ID: sn.ID, Time: sn.Time, Host: sn.Hostname, Original: sn.Original}, sn.Tags)
			if sn.Summary != nil {
				meta.Files, meta.Bytes = sn.Summary.TotalFilesProcessed, sn.Summary.TotalBytesProcessed
			}
			s.state.Known[sn.ID] = meta
		}
		if err := s.save(); err != nil {
			return nil, err
		}
	}
	g := history.Graph{}
	for id := range l.Snapshots {
		if k, ok := s.state.Known[id]; ok {
			g[id] = k
		}
	}
	// The server's retention re-tags snapshots (restic writes each again
	// under a new id that names the old one as its original): bases and
	// this computer's records follow them to their new ids.
	g = g.Resolved()
	moved := false
	for _, id := range append(append([]*string{&s.state.Last}, pointers(s.state.Skipped)...), pointers(s.state.Merged)...) {
		if now := g.Canonical(*id); now != *id {
			*id, moved = now, true
		}
	}
	if moved {
		if err := s.save(); err != nil {
			return nil, err
		}
	}
	if s.state.PendingPush != "" {
		s.adoptPending(g)
		if err := s.save(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// adoptPending finishes the bookkeeping of a push that was killed after
// restic saved the snapshot: that snapshot becomes the last synced one, so
// it is not mistaken for another computer's head. The manifest is left as
// it was, so the files count as changed and the next push records them
// again on top of it.
func (s *session) adoptPending(g history.Graph) {
	for id, sn := range g {
		if sn.Kind == history.KindPush && sn.Attempt == s.state.PendingPush {
			s.state.Last = id
			s.state.Skipped = nil
			s.state.Merged = nil
			s.state.PendingPush = ""
			return
		}
	}
}

// pointers returns a pointer to each element of list.
func pointers(list []string) []*string {
	out := make([]*string, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}

// snapshotMeta reads the metadata (time, host, tags) of snapshots this
// computer has not seen yet. With the repository's master key cached it
// downloads their files and decrypts them itself, in milliseconds; a run of
// "restic snapshots" would spend most of a second deriving the key from the
// password. Without a cached key, restic is asked for the key once (one
// run, the time "restic snapshots" would take) and it is cached beside the
// token. If the files cannot be read that way, restic reads them.
func (s *session) snapshotMeta(ctx context.Context, ids []string) ([]restic.Snapshot, error) {
	key, ok, err := s.masterKey(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		snaps, err := s.readSnapshots(ctx, key, ids)
		if err == nil {
			return snaps, nil
		}
		if errors.Is(err, repofile.ErrMAC) {
			// The repository was created again with a new key.
			_ = s.paths.ForgetMasterKey()
		}
		if errors.Is(err, remote.ErrAuth) || errors.Is(err, remote.ErrUnreachable) || errors.Is(err, remote.ErrServer) {
			return nil, err // restic would meet the same server
		}
	}
	rc, err := s.resticClient(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) > 200 {
		ids = nil // all: a long history seen for the first time
	}
	return rc.Snapshots(ctx, ids...)
}

// readSnapshots downloads and decrypts snapshot files, a few at a time. A
// snapshot deleted since the listing is left out, as if never listed.
func (s *session) readSnapshots(ctx context.Context, key repofile.Key, ids []string) ([]restic.Snapshot, error) {
	out := make([]restic.Snapshot, len(ids))
	found := make([]bool, len(ids))
	err := parallel(ctx, len(ids), func(ctx context.Context, i int) error {
		id := ids[i]
		file, err := s.server.SnapshotFile(ctx, s.cfg.InstanceID, id)
		if errors.Is(err, remote.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if out[i], err = key.Snapshot(id, file); err != nil {
			return err
		}
		s.snapMu.Lock()
		if s.snapFiles == nil {
			s.snapFiles = map[string][]byte{}
		}
		s.snapFiles[id] = file
		s.snapMu.Unlock()
		found[i] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	var snaps []restic.Snapshot
	for i := range out {
		if found[i] {
			snaps = append(snaps, out[i])
		}
	}
	return snaps, nil
}

// masterKey is the repository's master key: the cached one, else restic is
// asked for it once and it is cached. ok is false when restic printed
// something that is not a key or it cannot be cached.
func (s *session) masterKey(ctx context.Context) (key repofile.Key, ok bool, err error) {
	if key, ok := s.paths.LoadMasterKey(); ok {
		return key, true, nil
	}
	rc, err := s.resticClient(ctx)
	if err != nil {
		return repofile.Key{}, false, err
	}
	raw, err := rc.MasterKey(ctx)
	if err != nil {
		return repofile.Key{}, false, err
	}
	key, err = repofile.ParseMasterKey(raw)
	clear(raw)
	return key, err == nil && s.paths.SaveMasterKey(key) == nil, nil
}

// resticClient finds restic (only now: the fast paths never need it).
func (s *session) resticClient(ctx context.Context) (*restic.Client, error) {
	if s.restic != nil {
		return s.restic, nil
	}
	rc, err := s.newRestic(ctx, s.opt.NoDownload)
	if err != nil {
		return nil, err
	}
	s.prefetchRestic(ctx)
	a := s.ahead
	s.ahead = nil
	<-a.done
	if err := s.settle(ctx, rc, a); err != nil {
		return nil, err
	}
	return s.restic, nil
}

// newRestic finds restic and makes a client for the instance's
// repository, with no key chosen yet.
func (s *session) newRestic(ctx context.Context, noDownload bool) (*restic.Client, error) {
	found, err := resticbin.Find(ctx, resticbin.Options{
		Flag: s.opt.ResticBinary, PackFolder: s.opt.PackFolder, NoDownload: noDownload, Getenv: s.opt.Getenv,
	})
	if err != nil {
		return nil, err
	}
	return &restic.Client{
		Binary:       found.Path,
		Repo:         s.server.RepoURL(s.cfg.InstanceID),
		Password:     s.token.Password,
		RESTUser:     s.token.User,
		RESTPassword: s.token.Password,
		Dir:          s.opt.PackFolder,
		Stderr:       s.opt.Stderr,
		Timeout:      s.opt.ResticTimeout,
		Stall:        s.opt.ResticStall,
	}, nil
}

// settle makes rc the session's restic with what the server said (a):
// the key it must use (chooseKeyFrom), and the stale locks a killed run
// left, removed before rc runs.
func (s *session) settle(ctx context.Context, rc *restic.Client, a *resticAhead) error {
	if a.keysErr != nil {
		return a.keysErr
	}
	if err := s.chooseKeyFrom(ctx, rc, a.keys); err != nil {
		return err
	}
	s.restic = rc
	if s.state.UnlockPending || a.locks {
		// An earlier run could not remove its lock, or was killed (a
		// launcher kills hooks without warning, and restic dies with us).
		rc.LeftLock = true
		s.unlockLeft()
	}
	return nil
}

// unlockBound bounds a "restic unlock" after a failure: the server may
// still be gone, and the game waits.
const unlockBound = 10 * time.Second

// unlockLeft removes the repository lock a failed backup or restore of this
// session may have left on the server (restic was stopped while the
// server did not answer, so it could not remove it). Left there, it would
// hold the server's retention off for half an hour. restic unlock removes
// only stale locks: those of processes that no longer run here. If the
// server does not answer now, the next run that needs restic does it.
func (s *session) unlockLeft() {
	if s.restic == nil || !s.restic.LeftLock {
		return
	}
	s.restic.LeftLock = false
	ctx, cancel := context.WithTimeout(context.Background(), unlockBound)
	defer cancel()
	// A server that does not answer a request within seconds would not
	// answer restic either: the next run unlocks, without a wait now.
	probe := s.server
	probe.Timeout = 3 * time.Second
	if probe.Check(ctx, s.cfg.InstanceID) != nil {
		s.markUnlockPending(true)
		return
	}
	s.markUnlockPending(s.restic.Unlock(ctx) != nil)
}

// locksOnServer reports whether the repository holds restic locks (one
// listing): usually none, as restic removes its lock when it ends. Any
// lock found may be a killed run's; "restic unlock" removes only those
// of processes that no longer run here.
func (s *session) locksOnServer(ctx context.Context) bool {
	names, err := s.server.ListFiles(ctx, s.cfg.InstanceID, "locks")
	return err == nil && len(names) > 0
}

// markUnlockPending records whether a stale lock may still be on the
// server. It changes only that field of the saved state: the session's
// own state may hold changes a failure left unsaved on purpose.
func (s *session) markUnlockPending(pending bool) {
	if s.state.UnlockPending == pending {
		return
	}
	s.state.UnlockPending = pending
	st, err := s.paths.LoadState()
	if err != nil {
		return
	}
	st.UnlockPending = pending
	_ = s.paths.SaveState(&st)
}

// withUnlock runs f, a run of rc; when restic says the repository is
// locked, it removes stale locks once ("restic unlock" only removes locks
// that are stale) and tries again.
func (s *session) withUnlock(ctx context.Context, rc *restic.Client, f func() error) error {
	err := f()
	if errors.Is(err, restic.ErrLocked) {
		s.opt.UI.Warn("the cloud repository is locked; removing stale locks and trying once more")
		if uerr := rc.Unlock(ctx); uerr != nil {
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

// backup writes the file lists and runs restic backup from the pack folder
// with relative paths, so the snapshot restores into any folder. It records
// the new snapshot's metadata in state (not saved) and returns restic's
// summary of it. cur and facts are a walk of the scope. alongside, if not
// nil, runs in a goroutine from the moment restic starts, and has finished
// when backup returns.
func (s *session) backup(ctx context.Context, kind string, bases []string, parent string, cur *scope.Files, facts scope.Facts, alongside func()) (restic.BackupSummary, error) {
	rc, err := s.resticClient(ctx)
	if err != nil {
		return restic.BackupSummary{}, err
	}
	// A push's attempt is on disk before restic starts (a push killed
	// after restic saved its snapshot finds it by this id): the fsync runs
	// while restic's inputs are written, and restic starts only once it is
	// done. Nothing else touches the state meanwhile.
	attempt := newAttempt()
	saved := make(chan error, 1)
	if kind == history.KindPush {
		s.state.PendingPush = attempt
		go func() { saved <- s.save() }()
	} else {
		saved <- nil
	}
	err = s.writeResticInputs(cur, facts)
	if serr := <-saved; err == nil {
		err = serr
	}
	if err != nil {
		return restic.BackupSummary{}, err
	}
	rec := s.scopeRecord()
	tags := append(history.Tags(kind, bases, s.label(), attempt), history.ScopeTag(rec))
	var supersedes, merges []string
	if kind == history.KindPush {
		// The heads the player chose to keep this computer's files over:
		// the computers that pushed them say so at their next pull.
		supersedes = slices.Clone(s.state.Skipped)
		tags = append(tags, history.SupersedesTags(supersedes)...)
		// The heads a pull merged: this push carries their changes.
		merges = slices.Clone(s.state.Merged)
		tags = append(tags, history.MergesTags(merges)...)
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
	err = s.withUnlock(ctx, rc, func() error {
		var err error
		sum, err = rc.Backup(ctx, restic.BackupOptions{
			FilesFrom: s.paths.FilesFrom(), ExcludeFile: s.paths.ExcludeFrom(), Host: s.opt.Hostname,
			Tags: tags, Parent: parent, Files: cur.Len(),
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
		Bases: bases, Files: sum.TotalFiles, Bytes: sum.TotalBytes, Attempt: attempt, Supersedes: supersedes, Merges: merges, Scope: &rec,
	}
	if kind == history.KindPush {
		s.state.PendingPush = ""
	}
	return sum, err
}

// writeResticInputs writes restic backup's file list and exclude file for
// cur and facts, a walk of the scope.
func (s *session) writeResticInputs(cur *scope.Files, facts scope.Facts) error {
	// restic gets the scope's folders and exclude patterns when its own
	// filtering picks exactly the walked files (it walks folders faster than
	// it takes a list of thousands of files); otherwise the exact file list.
	targets, excludes, folders := s.scope.ResticFilterPaths(cur.Paths(), facts)
	if !folders {
		targets, excludes = nil, nil
	}
	// NUL-separated (--files-from-raw): a name may hold a newline, a
	// carriage return or bytes that are not UTF-8, never a NUL. restic's
	// inputs are written again before every backup and read only by it:
	// no fsync (a crash can only lose a file the next push rewrites).
	err := writeFileList(s.paths.FilesFrom(), func(yield func(string) bool) {
		if folders {
			for _, p := range targets {
				if !yield(p) {
					return
				}
			}
			return
		}
		cur.Paths()(yield)
	})
	if err != nil {
		return err
	}
	return os.WriteFile(s.paths.ExcludeFrom(), []byte(strings.Join(excludes, "\n")+"\n"), 0o600)
}

// safety snapshots the local files (cur and facts, a walk of the scope)
// before they are replaced. It returns "" when there is nothing local to
// keep.
func (s *session) safety(ctx context.Context, cur scope.Manifest, facts scope.Facts) (string, error) {
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
	sum, err := s.backup(ctx, history.KindSafety, bases, parentIn(listing, s.state.Last), scope.FilesOf(cur), facts, nil)
	id := sum.SnapshotID
	if err != nil {
		return "", fmt.Errorf("safety snapshot before replacing local files: %w; nothing was replaced", err)
	}
	s.opt.UI.Info("saved this computer's files as safety snapshot " + short(id))
	return id, s.save()
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

// newAttempt is a random id for one push.
func newAttempt() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func checkOpenWorlds(pack string) error { return worldlock.Check(pack) }

// restore makes the files in scope those of snapshot id: the files that
// are in this computer's scope and in the scope of the computer that made
// the snapshot (see makerScope). Nothing else is touched.
//
// edited are the live files changed since the last sync (nil: none, as in
// a fast-forward): their size and mtime say nothing about their content,
// even when they equal the snapshot's (two computers can save a file of
// the same size within one clock tick), so restic compares their content.
func (s *session) restore(ctx context.Context, id string, edited func(rel string) bool) error {
	if err := checkOpenWorlds(s.opt.PackFolder); err != nil {
		return err
	}
	// A restore from an earlier build wrote in place and was interrupted:
	// a file may hold part of the new content with the snapshot's size
	// and mtime, so no live file is trusted by its size and mtime.
	trusted := func(rel string) bool { return s.state.Restoring == "" && (edited == nil || !edited(rel)) }
	// This snapshot decides which of its names this OS cannot hold: the
	// names left out for an earlier snapshot may be fixed in this one.
	s.scope = s.baseScope
	// The walk runs while the snapshot's folders download.
	var cur scope.Manifest
	walked := make(chan error, 1)
	go func() {
		var err error
		cur, _, err = s.walk()
		walked <- err
	}()
	items, err := s.snapshotItems(ctx, id)
	werr := <-walked
	if err != nil {
		return &StageError{fmt.Errorf("reading snapshot %s: %w", short(id), err)}
	}
	if werr != nil {
		return werr
	}
	if want := s.state.Known[id].Files; len(items) == 0 && want > 0 {
		return &StageError{fmt.Errorf("snapshot %s lists no files in the sync scope but has %d; nothing was changed", short(id), want)}
	}
	hazards := scope.NameHazards(slices.Collect(maps.Keys(items)), runtime.GOOS)
	plan := s.planRestore(id, items, cur)
	plan = withoutHazards(plan, hazards)
	s.state.Unportable = scope.HazardUnits(hazards)
	s.scope = s.baseScope.Without(s.state.Unportable)
	for _, n := range plan.notes {
		s.opt.UI.Warn(n)
	}
	moves, err := s.stage(ctx, id, items, plan.want, trusted)
	if err != nil {
		removeTree(s.paths.Staging())
		return &StageError{permissionError(err)}
	}
	s.fault("staged")
	s.state.Journal = &instance.Journal{Snapshot: id, Moves: moves, Deletes: plan.deletes}
	s.state.Restoring = id
	if err := s.save(); err != nil {
		s.state.Journal, s.state.Restoring = nil, ""
		removeTree(s.paths.Staging())
		return err
	}
	return s.finishJournal()
}

// watchBase is what a change watcher checks the files against: the last
// sync and the scope, when the state is one a no-op push may trust (synced, nothing
// skipped, pending or half-restored). ok is false otherwise.
func watchBase(st *instance.State, sc scope.Scope) (b watch.Base, ok bool) {
	if st.Last == "" || st.ManifestDigest == "" || st.Restoring != "" || st.PendingPush != "" || len(st.Skipped) > 0 || len(st.Merged) > 0 {
		return watch.Base{}, false
	}
	return watch.Base{Last: st.Last, Digest: st.ManifestDigest, Scope: sc.Fingerprint()}, true
}

// keepWatcher leaves a change watcher running for the session that follows
// a pull: the one already running when it watches the same sync, else a
// new one. It never fails the pull: without a watcher the push walks.
func (s *session) keepWatcher() {
	if s.opt.StartWatcher == nil || !watch.Supported {
		return
	}
	base, ok := watchBase(&s.state, s.scope)
	if !ok {
		return
	}
	got, err := watch.Query(s.opt.PackFolder, watch.Ping, time.Second)
	if err == nil && got == base {
		return
	}
	if err == nil {
		_, _ = watch.Query(s.opt.PackFolder, watch.Quit, time.Second)
	}
	if err := s.opt.StartWatcher(s.opt.PackFolder); err != nil {
		s.opt.UI.Warn("cannot start the change watcher (the push after the game checks every file instead): " + err.Error())
	}
}

// unchangedSinceSync reports whether the pull's change watcher saw
// nothing in scope change since the last sync. It ends the watcher.
func (s *session) unchangedSinceSync() bool {
	base, ok := watchBase(&s.state, s.scope)
	if !ok || !watch.Supported || s.opt.NoWatcher {
		return false
	}
	// The watcher answers within milliseconds; the bound only ends a
	// watcher that hangs. Generous, since the push blocks no play and a
	// watcher starved of CPU for a second still saves it the walk.
	got, err := watch.Query(s.opt.PackFolder, watch.Quit, 5*time.Second)
	return err == nil && got == base
}

// done reports a finished pull.
func (s *session) done(r Result) (Result, error) {
	s.opt.UI.Info(r.Message)
	s.opt.UI.Event(ui.DoneEvent{Action: string(r.Action), Snapshot: r.Snapshot, Message: r.Message})
	return r, nil
}

func progressOf(op string, st restic.Status) ui.Progress {
	p := ui.Progress{Op: op, Percent: st.PercentDone * 100, BytesDone: st.BytesDone, BytesTotal: st.TotalBytes,
		FilesDone: st.FilesDone, FilesTotal: st.TotalFiles, ETA: time.Duration(st.SecondsLeft) * time.Second}
	if st.BytesRest > 0 {
		p.BytesDone, p.FilesDone = st.BytesRest, st.FilesRest
	}
	if len(st.Current) > 0 {
		p.CurrentFile = st.Current[0]
	}
	return p
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func appendUnique(list []string, s string) []string {
	for _, e := range list {
		if e == s {
			return list
		}
	}
	return append(list, s)
}

// writeFileList writes paths, NUL-separated and in the OS's form, to
// name, through a buffer: the list of a 250,000-file instance is never
// held whole.
func writeFileList(name string, paths iter.Seq[string]) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	for p := range paths {
		w.WriteString(filepath.FromSlash(p))
		w.WriteByte(0)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
