package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the embedded rest-server logs every repository it creates
	testscript.Main(m, map[string]func(){
		"instance-sync": func() { os.Exit(run()) },
	})
}

// TestScripts runs testdata/script/*.txtar against the real binary, real
// restic and an in-process upstream rest-server (append-only, private
// repos) with users alice and bob.
func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(testenv.Restic(t), "testdata/script"))
}

// TestScriptsResticRestore runs the scripts about restores again with
// every restore through restic (INSTANCE_SYNC_DIRECT=0): their files are
// few and small, which a pull otherwise downloads itself.
func TestScriptsResticRestore(t *testing.T) {
	p := scriptParams(testenv.Restic(t), "")
	for _, name := range []string{"diskfull", "names", "patternnames", "typechange", "restore", "stuckmove", "wiped", "sametick", "scope_both", "merge_kill", "offline"} {
		p.Files = append(p.Files, filepath.Join("testdata", "script", name+".txtar"))
	}
	setup := p.Setup
	p.Setup = func(env *testscript.Env) error {
		env.Setenv("INSTANCE_SYNC_DIRECT", "0")
		return setup(env)
	}
	testscript.Run(t, p)
}

// scriptParams are the Params of the scripts in dir: a server, a home,
// restic behind a wrapper that logs its runs, and the custom commands.
func scriptParams(realRestic, dir string) testscript.Params {
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			srv, err := testserver.Start(filepath.Join(env.WorkDir, ".server"), "", map[string]string{
				"alice": "alice-secret-pw", "bob": "bob-secret-pw",
			})
			if err != nil {
				return err
			}
			env.Defer(func() { srv.Close() })
			env.Values["server"] = srv
			home := filepath.Join(env.WorkDir, ".home")
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			wrapper := filepath.Join(env.WorkDir, ".bin", "restic")
			if err := os.MkdirAll(filepath.Dir(wrapper), 0o755); err != nil {
				return err
			}
			// The wrapper records every restic run: its arguments and the
			// names of the RESTIC_* variables it got.
			script := "#!/bin/sh\n" +
				"printf 'ARGS %s\\n' \"$*\" >> \"$ISYNC_TEST_LOG\"\n" +
				"printf 'ENV %s\\n' \"$(env | grep '^RESTIC_' | cut -d= -f1 | sort | tr '\\n' ' ')\" >> \"$ISYNC_TEST_LOG\"\n" +
				"exec \"$ISYNC_TEST_REAL_RESTIC\" \"$@\"\n"
			if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("SERVER", srv.URL)
			env.Setenv("SERVERDATA", srv.DataDir)
			env.Setenv("INSTANCE_SYNC_RESTIC", wrapper)
			env.Setenv("ISYNC_TEST_REAL_RESTIC", realRestic)
			env.Setenv("ISYNC_TEST_LOG", filepath.Join(env.WorkDir, "restic.log"))
			env.Setenv("INST_MC_DIR", "")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"server":      cmdServer,
			"getid":       cmdGetID,
			"holdlock":    cmdHoldLock,
			"snapcount":   cmdSnapCount,
			"resticruns":  cmdResticRuns,
			"lockworld":   cmdLockWorld,
			"watching":    cmdWatching,
			"sametimes":   cmdSameTimes,
			"lastsnap":    cmdLastSnap,
			"watchergone": cmdWatcherGone,
			"rawfile":     cmdRawFile,
			"tmpfs":       cmdTmpfs,
			"pin":         cmdPin,
			"oldrestore":  cmdOldRestore,
			"mkrand":      cmdMkrand,
			"fill":        cmdFill,
			"treesum":     cmdTreesum,
			"tokenfile":   cmdUserFile(instance.UserDirs.TokenFile),
			"keyfile":     cmdUserFile(instance.UserDirs.MasterKeyFile),
			"nosecret":    cmdNoSecret,
			"cpdir":       cmdCpDir,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	}
}

// server 500 on|off: the rest-server answers every request with a 500.
// server down: stop it, keeping its port (connections are refused; no
// other test's server is given the port while the script runs).
func cmdServer(ts *testscript.TestScript, neg bool, args []string) {
	srv := ts.Value("server").(*testserver.Server)
	switch {
	case len(args) == 2 && args[0] == "500":
		if args[1] == "on" {
			srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				http.Error(w, "injected failure", http.StatusInternalServerError)
				return true
			})
		} else {
			srv.SetHook(nil)
		}
	case len(args) == 1 && args[0] == "down":
		ts.Check(srv.Down())
	default:
		ts.Fatalf("usage: server 500 on|off | server down")
	}
}

// getid VAR PACK: set $VAR to PACK's instance id.
func cmdGetID(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: getid VAR PACK")
	}
	c, err := instance.Paths{Pack: ts.MkAbs(args[1])}.LoadConfig()
	ts.Check(err)
	ts.Setenv(args[0], c.InstanceID)
}

// lastsnap VAR PACK: set $VAR to the first 8 characters of the snapshot
// PACK last synced with.
func cmdLastSnap(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: lastsnap VAR PACK")
	}
	st, err := instance.Paths{Pack: ts.MkAbs(args[1])}.LoadState()
	ts.Check(err)
	if len(st.Last) < 8 {
		ts.Fatalf("%s has not synced", args[1])
	}
	ts.Setenv(args[0], st.Last[:8])
}

// holdlock PACK: take PACK's instance lock for the rest of the script,
// as a running sync would.
func cmdHoldLock(ts *testscript.TestScript, neg bool, args []string) {
	l, err := instance.Paths{Pack: ts.MkAbs(args[0])}.AcquireLock()
	ts.Check(err)
	ts.Defer(l.Release)
}

// snapcount USER ID N: instance ID's repository holds N snapshot files on
// the server.
func cmdSnapCount(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: snapcount USER ID N")
	}
	entries, _ := os.ReadDir(filepath.Join(ts.Getenv("SERVERDATA"), args[0], args[1], "snapshots"))
	want, _ := strconv.Atoi(args[2])
	if (len(entries) == want) == neg {
		ts.Fatalf("repository has %d snapshots, want %s%d", len(entries), map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// resticruns N [SUBCOMMAND]: restic ran N times so far (of SUBCOMMAND).
func cmdResticRuns(ts *testscript.TestScript, neg bool, args []string) {
	data, _ := os.ReadFile(ts.Getenv("ISYNC_TEST_LOG"))
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "ARGS ")
		if !ok {
			continue
		}
		if len(args) > 1 && !strings.Contains(" "+rest+" ", " "+args[1]+" ") {
			continue
		}
		n++
	}
	want, _ := strconv.Atoi(args[0])
	if n != want {
		ts.Fatalf("restic ran %d times, want %d", n, want)
	}
}

// lockworld FILE: hold a write lock on FILE (a world's session.lock) the
// way a running Minecraft does, for the rest of the script.
func cmdLockWorld(ts *testscript.TestScript, neg bool, args []string) {
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDWR|os.O_CREATE, 0o644)
	ts.Check(err)
	ts.Check(lockWorld(f))
	ts.Defer(func() { f.Close() })
}

// watching [-wait] PACK: a change watcher answers for PACK, and found its
// files clean. With -wait, one that is still walking is waited for (up
// to 2 minutes, for a loaded machine) until it answers or ends. It never
// ends the watcher. A watcher is given 30 s to answer: a slow answer is
// not taken for no watcher.
func cmdWatching(ts *testscript.TestScript, neg bool, args []string) {
	wait := len(args) == 2 && args[0] == "-wait"
	if wait {
		args = args[1:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: watching [-wait] PACK")
	}
	pack := ts.MkAbs(args[0])
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := watch.Query(pack, watch.Ping, 30*time.Second)
		if err == nil || !wait || len(watch.Pids(pack)) == 0 || time.Now().After(deadline) {
			if neg && err == nil {
				ts.Fatalf("a change watcher answers for %s", pack)
			}
			if !neg && err != nil {
				ts.Fatalf("no clean change watcher for %s: %v", pack, err)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watchergone PACK: wait (up to 2 minutes) until no change watcher process
// runs for PACK.
func cmdWatcherGone(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: watchergone PACK")
	}
	pack := ts.MkAbs(args[0])
	deadline := time.Now().Add(2 * time.Minute)
	for len(watch.Pids(pack)) > 0 {
		if time.Now().After(deadline) {
			ts.Fatalf("a change watcher still runs for %s: %v", pack, watch.Pids(pack))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawfile [-cmp|-rm] PATH CONTENT: write CONTENT to PATH, compare PATH's
// content with it, or remove PATH. Each part of PATH in double quotes is a
// Go string literal, so a name can hold any byte ("new\nline", "\xff").
func cmdRawFile(ts *testscript.TestScript, neg bool, args []string) {
	mode := ""
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	if len(args) != 2 && !(mode == "-rm" && len(args) == 1) {
		ts.Fatalf("usage: rawfile [-cmp|-rm] PATH CONTENT")
	}
	var name strings.Builder
	for i, part := range strings.Split(args[0], `"`) {
		if i%2 == 1 {
			u, err := strconv.Unquote(`"` + part + `"`)
			ts.Check(err)
			part = u
		}
		name.WriteString(part)
	}
	p := ts.MkAbs(name.String())
	switch mode {
	case "":
		ts.Check(os.MkdirAll(filepath.Dir(p), 0o755))
		ts.Check(os.WriteFile(p, []byte(args[1]+"\n"), 0o644))
	case "-rm":
		ts.Check(os.Remove(p))
	case "-cmp":
		got, err := os.ReadFile(p)
		switch {
		case neg && err == nil:
			ts.Fatalf("%q exists", p)
		case neg:
		case err != nil:
			ts.Fatalf("%v", err)
		case string(got) != args[1]+"\n":
			ts.Fatalf("%q holds %q, want %q", p, got, args[1]+"\n")
		}
	default:
		ts.Fatalf("usage: rawfile [-cmp|-rm] PATH CONTENT")
	}
}

// sametimes FILE...: each FILE is a JSON list of snapshots with "id" and
// "time" (instance-sync history --json, restic snapshots --json) or the
// last sync of instance-sync status --json; every
// snapshot listed in more than one file has the same time in each, and at
// least one is listed in all of them.
func cmdSameTimes(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: sametimes FILE FILE...")
	}
	times := map[string]time.Time{}
	seen := map[string]int{}
	for _, f := range args {
		type entry struct {
			ID   string    `json:"id"`
			Time time.Time `json:"time"`
		}
		var list []entry
		data := []byte(ts.ReadFile(f))
		if json.Unmarshal(data, &list) != nil {
			// instance-sync status --json: the last sync's snapshot and time.
			var st struct {
				ID   string    `json:"last_snapshot"`
				Time time.Time `json:"last_sync"`
			}
			ts.Check(json.Unmarshal(data, &st))
			list = []entry{{st.ID, st.Time}}
		}
		for _, sn := range list {
			if t, ok := times[sn.ID]; ok && !t.Equal(sn.Time) {
				ts.Fatalf("snapshot %.8s: %s in %s, %s before", sn.ID, sn.Time.Format(time.RFC3339Nano), f, t.Format(time.RFC3339Nano))
			}
			times[sn.ID] = sn.Time
			seen[sn.ID]++
		}
	}
	for _, n := range seen {
		if n == len(args) {
			return
		}
	}
	ts.Fatalf("no snapshot is listed in all of %s", strings.Join(args, ", "))
}

// tmpfs DIR SIZE: mount a tmpfs of SIZE (e.g. 8m) on DIR (created) for
// the rest of the script: a small disk. Needs root (see [root]).
func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: tmpfs DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+args[1], "tmpfs", dir).CombinedOutput(); err != nil {
		ts.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	ts.Defer(func() { exec.Command("umount", "-l", dir).Run() })
}

// mkrand FILE SIZE SEED: write SIZE bytes of pseudo-random data (a region
// file does not compress) derived from SEED.
func cmdMkrand(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: mkrand FILE SIZE SEED")
	}
	size, err := strconv.Atoi(args[1])
	ts.Check(err)
	seed, err := strconv.Atoi(args[2])
	ts.Check(err)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	name := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(name), 0o755))
	ts.Check(os.WriteFile(name, data, 0o644))
}

// fill FILE LEAVE: grow FILE until the file system holding it has about
// LEAVE bytes free.
func cmdFill(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: fill FILE LEAVE")
	}
	leave, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	name := ts.MkAbs(args[0])
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	ts.Check(err)
	defer f.Close()
	block := make([]byte, 4096)
	for {
		var st syscallStatfs
		ts.Check(statfs(filepath.Dir(name), &st))
		if st.free() <= leave {
			return
		}
		if _, err := f.Write(block); err != nil {
			return // full
		}
	}
}

// treesum DIR OUT: write the SHA-256 of every file under DIR (outside
// .cloud-sync), one "path digest" line each, sorted, to OUT: two trees
// are equal when their sums are (cmp).
func cmdTreesum(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: treesum DIR OUT")
	}
	root := ts.MkAbs(args[0])
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (rel == ".cloud-sync" || rel == "lost+found") {
			return filepath.SkipDir
		}
		switch {
		case d.IsDir():
			lines = append(lines, rel+"/")
		case d.Type()&fs.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			lines = append(lines, rel+" -> "+t)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%s %x", rel, sha256.Sum256(data)))
		}
		return nil
	})
	ts.Check(err)
	sort.Strings(lines)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
}

// pin FILE: bind-mount FILE onto itself for the rest of the script: it
// cannot be renamed over or removed, even by root (EBUSY), as a file
// another program holds open is on Windows. Needs root.
func cmdPin(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: pin FILE")
	}
	name := ts.MkAbs(args[0])
	if out, err := exec.Command("mount", "--bind", name, name).CombinedOutput(); err != nil {
		ts.Fatalf("mount --bind: %v\n%s", err, out)
	}
	ts.Defer(func() { exec.Command("umount", "-l", name).Run() })
}

// oldrestore PACK FROM: mark PACK's state as an earlier build left it when
// its in-place restore of FROM's last snapshot was interrupted
// ("restoring" set, no journal).
func cmdOldRestore(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: oldrestore PACK FROM")
	}
	from, err := instance.Paths{Pack: ts.MkAbs(args[1])}.LoadState()
	ts.Check(err)
	p := instance.Paths{Pack: ts.MkAbs(args[0])}
	st, err := p.LoadState()
	ts.Check(err)
	st.Restoring = from.Last
	ts.Check(p.SaveState(&st))
}

// userDirs are the user's folders as the binary finds them from the
// script's environment.
func userDirs(ts *testscript.TestScript) instance.UserDirs {
	d, err := instance.DefaultUserDirs(ts.Getenv, runtime.GOOS)
	ts.Check(err)
	return d
}

// tokenfile VAR PACK / keyfile VAR PACK: set $VAR to where the token of
// PACK's instance is kept / its master key is cached, in the user's folders.
func cmdUserFile(file func(instance.UserDirs, instance.Config) string) func(*testscript.TestScript, bool, []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: tokenfile|keyfile VAR PACK")
		}
		c, err := instance.Paths{Pack: ts.MkAbs(args[1])}.LoadConfig()
		ts.Check(err)
		ts.Setenv(args[0], file(userDirs(ts), c))
	}
}

// nosecret DIR TOKENFILE [KEYFILE]: no file under DIR holds the token's
// password or any part of the master key in KEYFILE (as stored or
// decoded).
func cmdNoSecret(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: nosecret DIR TOKENFILE [KEYFILE]")
	}
	tok, err := instance.ReadToken(ts.MkAbs(args[1]))
	ts.Check(err)
	secrets := map[string][]byte{"password": []byte(tok.Password)}
	if len(args) == 3 {
		raw, err := os.ReadFile(ts.MkAbs(args[2]))
		ts.Check(err)
		var key struct {
			MAC struct {
				K, R string
			}
			Encrypt string
		}
		ts.Check(json.Unmarshal(raw, &key))
		for name, b64 := range map[string]string{"mac.k": key.MAC.K, "mac.r": key.MAC.R, "encrypt": key.Encrypt} {
			dec, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(dec) < 16 {
				ts.Fatalf("master key %s: %q is not a key", name, b64)
			}
			secrets["master key "+name] = []byte(b64)
			secrets["master key "+name+" (decoded)"] = dec
		}
	}
	found := 0
	ts.Check(filepath.WalkDir(ts.MkAbs(args[0]), func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		found++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, s := range secrets {
			if bytes.Contains(data, s) {
				ts.Fatalf("%s holds the %s", path, name)
			}
		}
		return nil
	}))
	if found == 0 {
		ts.Fatalf("no files under %s", args[0])
	}
}

// cpdir SRC DST: copy the folder SRC to DST (which must not exist) with
// every file, hidden ones too, the way a launcher copies an instance.
func cmdCpDir(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: cpdir SRC DST")
	}
	src, dst := ts.MkAbs(args[0]), ts.MkAbs(args[1])
	if _, err := os.Stat(dst); err == nil {
		ts.Fatalf("%s exists", dst)
	}
	ts.Check(filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			return os.MkdirAll(to, fi.Mode().Perm()|0o700)
		case e.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
				return err
			}
			return os.Chtimes(to, fi.ModTime(), fi.ModTime())
		}
		return nil
	}))
}
