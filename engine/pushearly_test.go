package engine

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// earlyRig is a server and a computer that synced twice with it (so its
// next push starts restic before the checks), through a restic that logs
// each run's arguments.
type earlyRig struct {
	t      *testing.T
	srv    *testserver.Server
	real   string // the restic binary
	runs   string // the wrapper's log: one line of arguments per run
	opt    Options
	pack   string
	log    *bytes.Buffer
	id     string // the instance
	repo   string // its repository folder on the server
	server remote.Server
}

const earlyPassword = "alice-secret-pw"

func newEarlyRig(t *testing.T) *earlyRig {
	t.Helper()
	r := newFreshRig(t)
	r.push()
	r.write("saves/W/level.dat", "v2")
	r.push()
	if st := r.state(); st.Last == "" || st.KeyHint == "" {
		t.Fatalf("after two pushes the state names no last sync or key: %+v", st)
	}
	return r
}

// newFreshRig is an earlyRig before its first push: the instance is set
// up, and the server has no repository for it.
func newFreshRig(t *testing.T) *earlyRig {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("a shell script wraps restic")
	}
	r := &earlyRig{t: t, real: testenv.Restic(t), log: &bytes.Buffer{}}
	srv, err := testserver.Start(t.TempDir(), "", map[string]string{"alice": earlyPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r.srv = srv
	dir := t.TempDir()
	r.runs = filepath.Join(dir, "runs.log")
	wrapper := filepath.Join(dir, "restic")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + r.runs + "'\nexec '" + r.real + "' \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r.pack = t.TempDir()
	r.opt = Options{
		PackFolder: r.pack, ResticBinary: wrapper, NoDownload: true, Hostname: "a",
		UI: ui.NewPlain(r.log), Stderr: r.log, Getenv: func(string) string { return "" },
		UserDirs: instance.UserDirs{Config: t.TempDir(), Cache: t.TempDir()},
	}
	r.write("options.txt", "options")
	r.write("saves/W/level.dat", "v1")
	ctx := context.Background()
	cfg, err := Init(ctx, InitOptions{Options: r.opt, URL: srv.URL, Token: instance.Token{User: "alice", Password: earlyPassword}})
	if err != nil {
		t.Fatal(err)
	}
	r.id = cfg.InstanceID
	r.repo = filepath.Join(srv.DataDir, "alice", r.id)
	r.server = remote.Server{URL: srv.URL, User: "alice", Password: earlyPassword}
	return r
}

func (r *earlyRig) write(rel, data string) {
	r.t.Helper()
	name := filepath.Join(r.pack, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *earlyRig) push() Result {
	r.t.Helper()
	res, err := Push(context.Background(), r.opt)
	if err != nil || res.Action != ActionPushed {
		r.t.Fatalf("push: %+v, %v\n%s", res, err, r.log.String())
	}
	return res
}

func (r *earlyRig) state() instance.State {
	r.t.Helper()
	st, err := instance.Paths{Pack: r.pack}.LoadState()
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// since returns the restic runs logged after mark (a line count) and the
// new mark.
func (r *earlyRig) since(mark int) ([]string, int) {
	r.t.Helper()
	data, err := os.ReadFile(r.runs)
	if err != nil {
		r.t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	return lines[mark:], len(lines)
}

// restic runs the real restic on the repository.
// addKey adds a second key with the same password to the repository, as
// a password rotation or a second computer's "restic init" race does.
func (r *earlyRig) addKey() {
	r.t.Helper()
	pwFile := filepath.Join(r.t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(earlyPassword), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if out, err := r.restic("key", "add", "--new-password-file", pwFile).CombinedOutput(); err != nil {
		r.t.Fatalf("restic key add: %v\n%s", err, out)
	}
}

func (r *earlyRig) restic(args ...string) *exec.Cmd {
	cmd := exec.Command(r.real, append([]string{"--repo", r.server.RepoURL(r.id)}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+earlyPassword, "RESTIC_REST_USERNAME=alice", "RESTIC_REST_PASSWORD="+earlyPassword)
	return cmd
}

// pulledBy checks that another computer pulling the instance gets want as
// level.dat.
func (r *earlyRig) pulledBy(want string) {
	r.t.Helper()
	pack := r.t.TempDir()
	opt := r.opt
	opt.PackFolder, opt.Hostname, opt.ResticBinary = pack, "b", r.real
	opt.UserDirs = instance.UserDirs{Config: r.t.TempDir(), Cache: r.t.TempDir()}
	ctx := context.Background()
	if _, err := Init(ctx, InitOptions{Options: opt, URL: r.srv.URL, Token: instance.Token{User: "alice", Password: earlyPassword}, Join: r.id}); err != nil {
		r.t.Fatal(err)
	}
	if _, err := Pull(ctx, opt); err != nil {
		r.t.Fatalf("pull: %v\n%s", err, r.log.String())
	}
	if got, _ := os.ReadFile(filepath.Join(pack, "saves", "W", "level.dat")); string(got) != want {
		r.t.Fatalf("another computer pulled level.dat %q, want %q", got, want)
	}
}

func backups(runs []string) []string {
	var out []string
	for _, l := range runs {
		if strings.Contains(" "+l+" ", " backup ") {
			out = append(out, l)
		}
	}
	return out
}

// TestEarlyPushParentGone: the last sync's snapshot is gone from the
// server (retention removed it) when the push starts restic with it as
// --parent. restic would take it from its cache (and, were its trees
// pruned, call the snapshot incomplete); the push stops it when the
// listing says the parent is gone and runs it again without one, as it
// did when the listing came first, and restic's words are not shown.
func TestEarlyPushParentGone(t *testing.T) {
	r := newEarlyRig(t)
	last := r.state().Last
	if err := os.Remove(filepath.Join(r.repo, "snapshots", last)); err != nil {
		t.Fatal(err)
	}
	_, mark := r.since(0)
	r.log.Reset()
	r.write("saves/W/level.dat", "v3")
	res := r.push()
	runs, _ := r.since(mark)
	// The first backup is stopped as soon as the listing is in: on
	// loopback often before restic started.
	b := backups(runs)
	if len(b) == 0 || len(b) > 2 || strings.Contains(b[len(b)-1], "--parent") || len(b) == 2 && !strings.Contains(b[0], "--parent "+last) {
		t.Fatalf("want the backup without a parent (after one with --parent %s, stopped); restic ran:\n%s", last[:8], strings.Join(runs, "\n"))
	}
	if strings.Contains(r.log.String(), "restic:") {
		t.Errorf("the first run's complaint was shown:\n%s", r.log.String())
	}
	if st := r.state(); st.Last != res.Snapshot || st.PendingPush != "" {
		t.Errorf("state after the push: last %s, pending %q; want last %s, nothing pending", st.Last, st.PendingPush, res.Snapshot)
	}
	// (Another computer would see two heads: the snapshot before the
	// removed one, and this one, whose base is gone.)
	if got, err := r.restic("dump", res.Snapshot, "saves/W/level.dat").Output(); err != nil || string(got) != "v3" {
		t.Fatalf("the pushed snapshot holds level.dat %q (%v), want v3", got, err)
	}
}

// TestEarlyPushRepositoryGone: the repository was deleted from the server
// since the last sync. restic, started before the listing, finds no
// repository (or is stopped when the listing says so); the push creates
// it and backs up, as when the listing came first, and restic's
// complaint is not shown.
func TestEarlyPushRepositoryGone(t *testing.T) {
	r := newEarlyRig(t)
	last := r.state().Last
	if err := os.RemoveAll(r.repo); err != nil {
		t.Fatal(err)
	}
	_, mark := r.since(0)
	r.log.Reset()
	r.write("saves/W/level.dat", "v3")
	r.push()
	runs, _ := r.since(mark)
	var order []string
	for _, l := range runs {
		switch {
		case strings.Contains(" "+l+" ", " backup ") && strings.Contains(l, "--parent"):
			order = append(order, "backup --parent")
		case strings.Contains(" "+l+" ", " backup "):
			order = append(order, "backup")
		case strings.Contains(" "+l+" ", " init "):
			order = append(order, "init")
		}
	}
	// The repository is created without restic (initRepository).
	if o := strings.Join(order, ", "); o != "backup --parent, backup" && o != "backup" {
		t.Fatalf("want a backup with --parent %s stopped, then a backup without a parent into the new repository; restic ran:\n%s", last[:8], strings.Join(runs, "\n"))
	}
	out := r.log.String()
	if !strings.Contains(out, "creating the cloud repository") || strings.Contains(out, "restic:") {
		t.Errorf("want the repository created and no word from restic:\n%s", out)
	}
	entries, err := os.ReadDir(filepath.Join(r.repo, "snapshots"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one snapshot in the new repository: %d, %v", len(entries), err)
	}
	r.pulledBy("v3")
}

// TestEarlyPushStaleLock: a run killed while it held the repository's lock
// left it on the server. The push's restic starts before the lock check
// (a backup's lock shares the repository with a stale one), and the stale
// lock is removed after the backup, before the push ends: left there, it
// would hold the server's retention off for half an hour.
func TestEarlyPushStaleLock(t *testing.T) {
	r := newEarlyRig(t)
	locks := filepath.Join(r.repo, "locks")
	// A restic backup reading from a pipe holds its lock until the pipe
	// closes; killed, it leaves the lock behind.
	cmd := r.restic("backup", "--stdin", "--stdin-filename", "x")
	pw, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if entries, _ := os.ReadDir(locks); len(entries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("restic took no lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	pw.Close()
	if entries, _ := os.ReadDir(locks); len(entries) != 1 {
		t.Fatalf("want the killed run's lock on the server, found %d", len(entries))
	}
	_, mark := r.since(0)
	r.write("saves/W/level.dat", "v3")
	r.push()
	runs, _ := r.since(mark)
	var ops []string
	for _, l := range runs {
		switch {
		case strings.Contains(" "+l+" ", " backup "):
			ops = append(ops, "backup")
		case strings.Contains(" "+l+" ", " unlock "):
			ops = append(ops, "unlock")
		}
	}
	if strings.Join(ops, ", ") != "backup, unlock" {
		t.Errorf("want the backup, then the unlock; restic ran:\n%s", strings.Join(runs, "\n"))
	}
	if entries, _ := os.ReadDir(locks); len(entries) != 0 {
		t.Fatalf("%d locks left on the server after the push", len(entries))
	}
	if r.state().UnlockPending {
		t.Error("the state says a lock is still to be removed")
	}
	r.pulledBy("v3")
}

// TestEarlyPushKeyReplaced: the key this computer's state names was
// replaced (a password rotation adds a key and removes the old one).
// restic, started with the old key's hint, finds the new key itself; the
// push then chooses the new key for the next run, as the key list would
// have made it do before restic started.
func TestEarlyPushKeyReplaced(t *testing.T) {
	r := newEarlyRig(t)
	old := r.state().KeyHint
	r.addKey()
	entries, err := os.ReadDir(filepath.Join(r.repo, "keys"))
	if err != nil || len(entries) != 2 {
		t.Fatalf("want two keys: %d, %v", len(entries), err)
	}
	added := entries[0].Name()
	if added == old {
		added = entries[1].Name()
	}
	// The server is append-only: the operator removes keys on its disk.
	rm := exec.Command(r.real, "--repo", r.repo, "--key-hint", added, "key", "remove", old)
	rm.Env = append(os.Environ(), "RESTIC_PASSWORD="+earlyPassword)
	if out, err := rm.CombinedOutput(); err != nil {
		t.Fatalf("restic key remove: %v\n%s", err, out)
	}
	_, mark := r.since(0)
	r.write("saves/W/level.dat", "v3")
	r.push()
	runs, _ := r.since(mark)
	if b := backups(runs); len(b) != 1 || !strings.Contains(b[0], "--key-hint "+old) {
		t.Fatalf("want one backup, started with the old key's hint; restic ran:\n%s", strings.Join(runs, "\n"))
	}
	if got := r.state().KeyHint; got != added {
		t.Fatalf("the state names key %.8s after the push, want the new one %.8s", got, added)
	}
	r.pulledBy("v3")
}

// TestEarlyPushKeyThatDoesNotOpenTheConfig: the key this computer's state
// names is gone, and of the two keys left that open with the password,
// the first restic tries holds another master key (two computers created
// the repository at the same moment; one config won). restic, started
// before the key list, fails on the config without writing anything; the
// push chooses the key that opens the config, as the key list would have
// made it do first, and runs restic again with it.
func TestEarlyPushKeyThatDoesNotOpenTheConfig(t *testing.T) {
	r := newEarlyRig(t)
	old := r.state().KeyHint
	r.addKey()
	keys := filepath.Join(r.repo, "keys")
	entries, err := os.ReadDir(keys)
	if err != nil || len(entries) != 2 {
		t.Fatalf("want two keys: %d, %v", len(entries), err)
	}
	good := entries[0].Name()
	if good == old {
		good = entries[1].Name()
	}
	// Another repository's key, with the same password, listed before
	// the good one.
	stray := ""
	for range 20 {
		other := t.TempDir()
		init := exec.Command(r.real, "--repo", other, "init")
		init.Env = append(os.Environ(), "RESTIC_PASSWORD="+earlyPassword)
		if out, err := init.CombinedOutput(); err != nil {
			t.Fatalf("restic init: %v\n%s", err, out)
		}
		ks, err := os.ReadDir(filepath.Join(other, "keys"))
		if err != nil || len(ks) != 1 {
			t.Fatalf("want one key: %v", err)
		}
		if ks[0].Name() < good {
			data, err := os.ReadFile(filepath.Join(other, "keys", ks[0].Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(keys, ks[0].Name()), data, 0o600); err != nil {
				t.Fatal(err)
			}
			stray = ks[0].Name()
			break
		}
	}
	if stray == "" {
		t.Fatal("no key listed before the good one in 20 repositories")
	}
	rm := exec.Command(r.real, "--repo", r.repo, "--key-hint", good, "key", "remove", old)
	rm.Env = append(os.Environ(), "RESTIC_PASSWORD="+earlyPassword)
	if out, err := rm.CombinedOutput(); err != nil {
		t.Fatalf("restic key remove: %v\n%s", err, out)
	}
	_, mark := r.since(0)
	r.log.Reset()
	r.write("saves/W/level.dat", "v3")
	r.push()
	runs, _ := r.since(mark)
	b := backups(runs)
	if len(b) != 2 || !strings.Contains(b[0], "--key-hint "+old) || !strings.Contains(b[1], "--key-hint "+good) {
		t.Fatalf("want a backup with the old key's hint, then one with the good key's; restic ran:\n%s", strings.Join(runs, "\n"))
	}
	if strings.Contains(r.log.String(), "restic:") {
		t.Errorf("the first run's complaint was shown:\n%s", r.log.String())
	}
	if got := r.state().KeyHint; got != good {
		t.Fatalf("the state names key %.8s after the push, want %.8s", got, good)
	}
	r.pulledBy("v3")
}

// TestEarlyPushParentRetagged: the server's retention re-tagged the last
// sync's snapshot (restic writes it again under a new id and removes the
// old file) before the push. restic, started with the old id as --parent,
// is stopped when the listing lacks it; the push reads the graph as after a
// killed push, follows the old id to the new one and backs up with that as
// the parent and the base, so another computer sees one head.
func TestEarlyPushParentRetagged(t *testing.T) {
	r := newEarlyRig(t)
	last := r.state().Last
	// As retention does it, on the server's disk.
	tag := exec.Command(r.real, "--repo", r.repo, "tag", "--add", "kept", last)
	tag.Env = append(os.Environ(), "RESTIC_PASSWORD="+earlyPassword)
	if out, err := tag.CombinedOutput(); err != nil {
		t.Fatalf("restic tag: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(filepath.Join(r.repo, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	retagged := ""
	for _, e := range entries {
		if e.Name() == last {
			t.Fatal("restic tag kept the old snapshot file")
		}
		if out, err := r.restic("cat", "snapshot", e.Name()).Output(); err == nil && strings.Contains(string(out), last) {
			retagged = e.Name()
		}
	}
	if retagged == "" {
		t.Fatal("no snapshot names the last sync as its original")
	}
	_, mark := r.since(0)
	r.log.Reset()
	r.write("saves/W/level.dat", "v3")
	res := r.push()
	runs, _ := r.since(mark)
	b := backups(runs)
	if len(b) == 0 || !strings.Contains(b[len(b)-1], "--parent "+retagged) || !strings.Contains(b[len(b)-1], "--tag base:"+retagged) {
		t.Fatalf("want the last backup with the re-tagged snapshot %.8s as its parent and base; restic ran:\n%s", retagged, strings.Join(runs, "\n"))
	}
	if st := r.state(); st.Last != res.Snapshot || st.PendingPush != "" {
		t.Errorf("state after the push: last %s, pending %q; want last %s, nothing pending", st.Last, st.PendingPush, res.Snapshot)
	}
	r.pulledBy("v3")
}
