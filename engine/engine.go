// Package engine keeps a Minecraft launcher instance's player data in
// sync across computers through restic snapshots on a rest-server. This is
// the programmatic API; cmd/instance-sync is a thin CLI over it.
//
// Every operation takes an Options value naming the pack folder and how to
// reach the player; nothing is read from flags or global state.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/resticbin"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// Options are shared by every operation.
type Options struct {
	PackFolder   string // the instance's game folder; required
	TokenFile    string // default UserDirs.TokenFile: outside the pack folder
	ResticBinary string // --restic-binary
	NoDownload   bool   // never download restic
	Label        string // instance label shown to the player and stored with snapshots
	InsecureHTTP bool   // allow plain http to a non-loopback server

	// Prefer resolves a conflict without asking: "local" or "cloud".
	Prefer string
	// Snapshot picks the head to restore with Prefer "cloud" when there are
	// several (an id or unique prefix).
	Snapshot string
	// OfflineFail makes a pull that cannot reach the server fail instead of
	// warning and letting the game start (and the command line's hooks fail
	// with exit 4 when the server refuses the login).
	OfflineFail bool

	UI       ui.UI     // default: plain lines on Stderr
	Stderr   io.Writer // restic's own messages; default os.Stderr
	Hostname string    // default os.Hostname()
	Getenv   func(string) string
	// UserDirs hold the tokens, the cached master keys and this computer's
	// id; default instance.DefaultUserDirs through Getenv.
	UserDirs    instance.UserDirs
	userDirsErr error // why the default UserDirs could not be found

	// StartWatcher, when set, starts a change watcher for the pack folder
	// (package watch) after a pull; the next push asks it instead of
	// stat'ing every file. The command line sets it; nil starts none.
	StartWatcher func(pack string) error
	// NoWatcher: the push never asks a change watcher, even one that is
	// running; it checks every file (INSTANCE_SYNC_WATCH=0).
	NoWatcher bool

	// Fault, when set, is called at the named points of a restore
	// ("seeded", "restored", "staged", "moved:N" after the Nth file is in place):
	// tests kill the process there. Nil in normal use.
	Fault func(point string)

	// HTTPTimeout bounds each request to the server (default 10s).
	HTTPTimeout time.Duration
	// ResticStall ends a restic backup or restore that made no progress for
	// this long (default 2 minutes); ResticTimeout bounds other restic runs
	// (default 2 minutes).
	ResticStall   time.Duration
	ResticTimeout time.Duration
}

// Result says what an operation did.
type Result struct {
	Action   Action
	Snapshot string // the snapshot synced with, when there is one
	Message  string
}

// Action is what a sync did: Result.Action, and the "action" of the --json
// done event (README, "--json events").
type Action string

// The actions. A pull's fast-forward and resume take history.Action's
// names.
const (
	ActionNotOptedIn  Action = "not-opted-in" // no sync.json: nothing said, nothing done
	ActionOffline     Action = "offline"      // the server could not be reached; the pull let the game start
	ActionNothing     Action = "nothing"
	ActionLocalAhead  Action = "local-ahead"
	ActionFastForward Action = "fast-forward"
	ActionResume      Action = "resume"
	ActionNotRestored Action = "not-restored" // the restore failed and changed nothing
	ActionKeptLocal   Action = "kept-local"
	ActionUsedCloud   Action = "used-cloud"
	ActionPushed      Action = "pushed"
	ActionRestored    Action = "restored"
	ActionAuthFailed  Action = "auth-failed" // a hook went on without sync: the server refused the token
	ActionCopy        Action = "copy"        // a copied folder, not synced as the original (NotOriginalError)
)

// ConflictError is a conflict that was not resolved. Exit code 3.
type ConflictError struct {
	Reason string
	Heads  []history.Snapshot
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("conflict: %s; nothing was changed. Choose with \"instance-sync pull --prefer=cloud\" (safety snapshot of this computer's files, then the cloud version) or \"--prefer=local\" (keep this computer's files)", e.Reason)
}

// ErrCancelled means the player cancelled (the launch, a dialog, a
// progress window). Exit code 3. It is ui.ErrCancelled: one value whether
// the UI or the engine noticed.
var ErrCancelled = ui.ErrCancelled

func (o *Options) defaults() error {
	if o.PackFolder == "" {
		return errors.New("no pack folder: pass --pack-folder or run from the launcher (which sets $INST_MC_DIR)")
	}
	abs, err := filepath.Abs(o.PackFolder)
	if err != nil {
		return err
	}
	o.PackFolder = abs
	if o.UI == nil {
		o.UI = ui.NewPlain(os.Stderr)
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "unknown"
		}
		o.Hostname = h
	}
	if o.UserDirs.Config == "" || o.UserDirs.Cache == "" {
		// An error matters only to an opted-in instance (needUserDirs): a
		// hook on a folder that is not opted in stays silent.
		o.UserDirs, o.userDirsErr = instance.DefaultUserDirs(o.Getenv, runtime.GOOS)
	}
	if o.ResticStall == 0 {
		o.ResticStall = 2 * time.Minute
	}
	if o.ResticTimeout == 0 {
		o.ResticTimeout = 2 * time.Minute
	}
	return nil
}

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
	facts     scope.Facts    // of the last walk, for choosing restic's filter
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

func (s *session) close() {
	s.unlockLeft()
	s.lock.Release()
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

// Label picks the instance label: the flag, then $INST_NAME, then $INST_ID,
// then the label given at init, then the first 8 characters of the
// instance id.
func Label(flag string, getenv func(string) string, saved, instanceID string) string {
	if flag != "" {
		return flag
	}
	for _, k := range []string{"INST_NAME", "INST_ID"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	if saved != "" {
		return saved
	}
	if len(instanceID) > 8 {
		return instanceID[:8]
	}
	return instanceID
}

// resticClient finds restic (only now: the fast paths never need it).
func (s *session) resticClient(ctx context.Context) (*restic.Client, error) {
	if s.restic != nil {
		return s.restic, nil
	}
	found, err := resticbin.Find(ctx, resticbin.Options{
		Flag: s.opt.ResticBinary, PackFolder: s.opt.PackFolder, NoDownload: s.opt.NoDownload, Getenv: s.opt.Getenv,
	})
	if err != nil {
		return nil, err
	}
	rc := &restic.Client{
		Binary:       found.Path,
		Repo:         s.server.RepoURL(s.cfg.InstanceID),
		Password:     s.token.Password,
		RESTUser:     s.token.User,
		RESTPassword: s.token.Password,
		Dir:          s.opt.PackFolder,
		Stderr:       s.opt.Stderr,
		Timeout:      s.opt.ResticTimeout,
		Stall:        s.opt.ResticStall,
	}
	if err := s.chooseKey(ctx, rc); err != nil {
		return nil, err
	}
	s.restic = rc
	if s.state.UnlockPending || s.locksOnServer(ctx) {
		// An earlier run could not remove its lock, or was killed (a
		// launcher kills hooks without warning, and restic dies with us).
		rc.LeftLock = true
		s.unlockLeft()
	}
	return s.restic, nil
}

// walk stats the scope and keeps what else it saw.
func (s *session) walk() (scope.Manifest, error) {
	m, facts, err := s.scope.WalkFacts(s.opt.PackFolder)
	s.facts = facts
	return m, err
}

// localChanged compares the scope now (cur, whose digest is digest) with
// the last synced manifest.
func (s *session) localChanged(cur scope.Manifest, digest string) bool {
	if !s.state.Synced() {
		return len(cur) > 0
	}
	if s.state.ManifestDigest != "" {
		return digest != s.state.ManifestDigest
	}
	if err := s.state.LoadManifest(); err != nil {
		return true // unreadable: treat as changed, which never overwrites
	}
	return !scope.Diff(s.state.Manifest, cur).Empty()
}

// lastManifest is the manifest of the last sync, decoded; nil if none.
func (s *session) lastManifest() scope.Manifest {
	if err := s.state.LoadManifest(); err != nil {
		return nil
	}
	return s.state.Manifest
}

func (s *session) save() error { return s.paths.SaveState(&s.state) }

// watchBase is what a change watcher checks the files against: the last
// sync and the scope, when the state is one a no-op push may trust (synced, nothing
// skipped, pending or half-restored). ok is false otherwise.
func watchBase(st *instance.State, sc scope.Scope) (b watch.Base, ok bool) {
	if st.Last == "" || st.ManifestDigest == "" || st.Restoring != "" || st.PendingPush != "" || len(st.Skipped) > 0 {
		return watch.Base{}, false
	}
	return watch.Base{Last: st.Last, Digest: st.ManifestDigest, Scope: sc.Fingerprint()}, true
}

// Watch runs the change watcher of the pack folder (package watch) until
// something in scope changes, a push asks it, or watch.MaxAge passes. It
// takes no lock: it only reads, and runs for as long as the game does.
func Watch(opt Options) error {
	if err := opt.defaults(); err != nil {
		return err
	}
	paths := instance.Paths{Pack: opt.PackFolder}
	if _, err := paths.LoadConfig(); err != nil {
		return err
	}
	sc, err := paths.LoadScope()
	if err != nil {
		return err
	}
	st, err := paths.LoadState()
	if err != nil {
		return err
	}
	sc = sc.Without(st.Unportable) // the scope the pull and push use
	base, ok := watchBase(&st, sc)
	if !ok {
		return errors.New("not watching: the last sync left work for the next push")
	}
	return watch.Serve(opt.PackFolder, sc, base, watch.MaxAge)
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
	got, err := watch.Query(s.opt.PackFolder, watch.Quit, time.Second)
	return err == nil && got == base
}
