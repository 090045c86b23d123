package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/scope"
)

// TestKillAnywhere kills pull and push with SIGKILL at spread-out moments
// of a transfer (launchers kill hooks without warning), then runs the same
// command again. It must exit 0 without a false conflict, leave the scope
// equal to the intended snapshot, and lose no file version: every version
// that ever existed is in an instance or in the repository.
//
// ISYNC_FAULT_POINTS sets the number of kill points (default 6; 100 for a
// long run).
func TestKillAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills real syncs")
	}
	if os.Getenv("GOOS") == "windows" || filepath.Separator != '/' {
		t.Skip("SIGKILL")
	}
	realRestic := testenv.Restic(t)
	points := 6
	if v := os.Getenv("ISYNC_FAULT_POINTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ISYNC_FAULT_POINTS=%q", v)
		}
		points = n
	}
	bin := buildBinary(t)
	work := t.TempDir()
	srv, token := aliceServer(t, work)
	// A killed run's restic dies with it, and stays a zombie until init
	// reaps it: seconds in some sandboxes (CI's), where PID 1 reaps now
	// and then. restic takes a lock whose process still exists (a zombie
	// answers a signal) for a live one, so the next runs' "restic unlock"
	// would keep the lock. Each restic records its pid, and after a kill
	// the test waits until the killed run's restic processes are gone, as
	// they are at once on a computer whose init reaps promptly.
	pids := filepath.Join(work, "restic.pids")
	wrapper := filepath.Join(work, "restic")
	script := fmt.Sprintf("#!/bin/sh\necho $$ >> '%s'\nexec '%s' \"$@\"\n", pids, realRestic)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	started := func() int {
		data, _ := os.ReadFile(pids)
		return len(data)
	}
	// reaped waits until every restic started since the pid file was off
	// bytes long has ended and been reaped.
	reaped := func(off int) {
		t.Helper()
		data, _ := os.ReadFile(pids)
		for _, pid := range strings.Fields(string(data[off:])) {
			for deadline := time.Now().Add(2 * time.Minute); ; {
				if _, err := os.Stat("/proc/" + pid); err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("restic (pid %s) of a killed run still exists after 2 minutes", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	// One computer: a and b share its home (token, keys, restic's cache).
	pc := newComputer(t, bin, wrapper, filepath.Join(work, "home"))
	must := pc.must
	// killAfter starts the command and SIGKILLs it after d (if still
	// running), then waits for its restic to be gone.
	killAfter := func(d time.Duration, pack string, args ...string) bool {
		off := started()
		cmd := pc.command(pack, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			return false
		case <-time.After(d):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			reaped(off)
			return true
		}
	}

	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{} // content hashes of every file version written
	writeFile := func(pack, rel string, size int) {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		p := filepath.Join(pack, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		seen[hash(data)] = true
	}
	for i := range 24 {
		writeFile(a, fmt.Sprintf("saves/World/region/r.%d.0.mca", i), 384<<10)
	}
	for i := range 40 {
		writeFile(a, fmt.Sprintf("saves/World/playerdata/p%d.dat", i), 2<<10)
	}
	writeFile(a, "options.txt", 300)
	os.MkdirAll(b, 0o755)

	must(a, "init", "--url="+srv.URL, "--token-file="+token)
	cfg, err := instance.Paths{Pack: a}.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	must(a, "push")
	must(b, "init", "--url="+srv.URL, "--token-file="+token, "--join="+cfg.InstanceID)
	must(b, "pull")
	sameScope(t, a, b)

	change := func(pack string, round int) {
		for j := range 6 {
			writeFile(pack, fmt.Sprintf("saves/World/region/r.%d.0.mca", (round*7+j)%24), 384<<10)
		}
		writeFile(pack, fmt.Sprintf("saves/World/playerdata/new%d.dat", round), 1<<10)
		os.Remove(filepath.Join(pack, fmt.Sprintf("saves/World/playerdata/p%d.dat", round%40)))
		os.Remove(filepath.Join(pack, fmt.Sprintf("saves/World/playerdata/new%d.dat", round-3)))
	}
	// One unkilled round measures how long the runs to be killed take.
	change(a, 1000)
	must(a, "push")
	start := time.Now()
	must(b, "pull")
	tPull := time.Since(start)
	change(b, 1001)
	start = time.Now()
	must(b, "push")
	tPush := time.Since(start)
	must(a, "pull")

	// Deterministic kills at each phase of a restore: staging seeded (before
	// restic), downloaded into the staging folder (nothing moved yet), and
	// after the first and third file is in place. Each file must be its old or its new version; the
	// next pull, or push, finishes without a conflict.
	// Each twice: the pull downloading the files itself, and restic.
	for n, point := range []string{"seeded", "restored", "moved:1", "moved:3", "seeded", "restored", "moved:1", "moved:3"} {
		change(a, 500+n)
		must(a, "push")
		before := fileHashes(t, b)
		want := fileHashes(t, a)
		cmd := pc.command(b, "pull")
		cmd.Env = append(slices.Clone(cmd.Env), "INSTANCE_SYNC_TEST_KILL_AT="+point)
		if n >= 4 {
			cmd.Env = append(cmd.Env, "INSTANCE_SYNC_DIRECT=0")
		}
		off := started()
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("pull was not killed at %s: %v\n%s", point, err, out)
		}
		reaped(off)
		got := fileHashes(t, b)
		for p := range mergeKeys(before, want, got) {
			if got[p] != before[p] && got[p] != want[p] {
				t.Fatalf("killed at %s: %s is neither its old nor its new version", point, p)
			}
		}
		if point == "seeded" || point == "restored" {
			for p := range mergeKeys(before, got) {
				if got[p] != before[p] {
					t.Fatalf("killed before the move: %s changed", p)
				}
			}
		}
		finish := "pull"
		if point == "moved:3" {
			finish = "push" // a push finishes the move first, then has nothing to push
		}
		out2 := must(b, finish)
		if strings.Contains(out2, "conflict") {
			t.Fatalf("killed at %s: false conflict:\n%s", point, out2)
		}
		sameScope(t, a, b)
		if finish == "push" && !strings.Contains(out2, "nothing to push") {
			t.Fatalf("push after a killed move pushed:\n%s", out2)
		}
		must(b, "pull")
	}

	killed := 0
	for i := range points {
		frac := (float64(i) + 0.5) / float64(points)
		// Pull killed mid-restore: a pushed a new version.
		change(a, 2*i)
		must(a, "push")
		if killAfter(time.Duration(frac*float64(tPull)), b, "pull") {
			killed++
		}
		out := must(b, "pull")
		if strings.Contains(out, "conflict") {
			t.Fatalf("point %d: false conflict after a killed pull:\n%s", i, out)
		}
		sameScope(t, a, b)

		// Push killed mid-backup: b made progress.
		change(b, 2*i+1)
		if killAfter(time.Duration(frac*float64(tPush)), b, "push") {
			killed++
		}
		must(b, "push")
		out = must(a, "pull")
		if strings.Contains(out, "conflict") {
			t.Fatalf("point %d: false conflict after a killed push:\n%s", i, out)
		}
		sameScope(t, a, b)
	}
	t.Logf("%d kill points, %d runs killed mid-flight (pull %s, push %s)", points, killed, tPull.Round(time.Millisecond), tPush.Round(time.Millisecond))

	// A killed run's restic lock does not outlive the next runs (it would
	// hold the server's prune off for half an hour).
	repo := filepath.Join(srv.DataDir, "alice", cfg.InstanceID)
	if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) > 0 {
		t.Fatalf("%d restic locks left on the server after the runs that followed the kills:%s", len(locks), lockReport(realRestic, repo, "alice-pw", locks))
	}

	// Every version ever written is in an instance or in a snapshot.
	have := map[string]bool{}
	addTree(t, a, have)
	addTree(t, b, have)
	entries, _ := os.ReadDir(filepath.Join(repo, "snapshots"))
	for _, e := range entries {
		target := filepath.Join(work, "check", e.Name())
		cmd := exec.Command(realRestic, "-r", repo, "restore", e.Name(), "--target", target)
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=alice-pw", "RESTIC_CACHE_DIR="+filepath.Join(work, "cache"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restic restore %s: %v\n%s", e.Name(), err, out)
		}
		addTree(t, target, have)
		os.RemoveAll(target)
	}
	lost := 0
	for h := range seen {
		if !have[h] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d file versions are neither in an instance nor in the repository", lost, len(seen))
	}
	t.Logf("all %d file versions accounted for in %d snapshots", len(seen), len(entries))
}

// lockReport describes restic locks left in the local repository repo for
// a failure message: each lock as restic reads it (host, pid, time) and
// what /proc says of that pid here (a lock is stale to restic only once
// its process is gone).
func lockReport(restic, repo, password string, locks []os.DirEntry) string {
	var r strings.Builder
	for _, l := range locks {
		cmd := exec.Command(restic, "-r", repo, "--no-lock", "cat", "lock", l.Name())
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+password)
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(&r, "\n%s: %s", l.Name(), bytes.TrimSpace(out))
		if err != nil {
			fmt.Fprintf(&r, " (%v)", err)
			continue
		}
		var lock struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(out, &lock) == nil && lock.PID > 0 {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", lock.PID))
			if err != nil {
				fmt.Fprintf(&r, "\n  pid %d: %v", lock.PID, err)
			} else {
				fmt.Fprintf(&r, "\n  pid %d now: %s", lock.PID, bytes.TrimSpace(stat))
			}
		}
	}
	return r.String()
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func addTree(t *testing.T, root string, into map[string]bool) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		into[hash(data)] = true
		return nil
	})
}

// sameScope fails unless the synced files of a and b are identical.
func sameScope(t *testing.T, a, b string) {
	t.Helper()
	if d := scopeDiff(t, a, b); d != "" {
		t.Fatal(d)
	}
}

// scopeDiff says how the synced files of a and b differ: the file lists,
// or the first file whose content differs with its digest, size and mtime
// on each side; "" when they are identical.
func scopeDiff(t *testing.T, a, b string) string {
	t.Helper()
	sc := scope.New(scope.Overrides{})
	ma, err := sc.Walk(a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := sc.Walk(b)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := ma.Paths(), mb.Paths()
	sort.Strings(pa)
	sort.Strings(pb)
	if strings.Join(pa, "\n") != strings.Join(pb, "\n") {
		return fmt.Sprintf("file lists differ:\n%v\n%v", scope.Diff(ma, mb), pb)
	}
	for _, p := range pa {
		da, _ := os.ReadFile(filepath.Join(a, p))
		db, _ := os.ReadFile(filepath.Join(b, p))
		if !bytes.Equal(da, db) {
			return fmt.Sprintf("%s differs:\n  %s\n  %s", p, fileFacts(filepath.Join(a, p), da), fileFacts(filepath.Join(b, p), db))
		}
	}
	return ""
}

// fileFacts is what a failure says of a file: its path, digest, size,
// mtime and first bytes.
func fileFacts(name string, data []byte) string {
	mtime := "?"
	if fi, err := os.Stat(name); err == nil {
		mtime = fi.ModTime().UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s: sha256 %.16s, %d bytes, mtime %s, starts %q", name, hash(data), len(data), mtime, data[:min(len(data), 32)])
}

// fileHashes maps each synced file of pack to its content's hash.
func fileHashes(t *testing.T, pack string) map[string]string {
	t.Helper()
	m, err := scope.New(scope.Overrides{}).Walk(pack)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for p := range m {
		data, err := os.ReadFile(filepath.Join(pack, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		out[p] = hash(data)
	}
	return out
}

func mergeKeys(ms ...map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			out[k] = true
		}
	}
	return out
}
