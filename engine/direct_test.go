package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
)

// randomData is n bytes that restic's chunker cuts into several blobs
// (about 1 MiB each), the same for every run.
func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestSmallPullDownloadsItself: a pull of a few changed files runs no
// restic (no key derivation, no second reading of the repository): it
// downloads only the blobs its own copy does not hold at the same place,
// and the file gets the snapshot's content, mtime and mode.
func TestSmallPullDownloadsItself(t *testing.T) {
	w := newTwoSynced(t)
	ctx := context.Background()
	const rel = "saves/W/region/r.1.0.mca"
	data := randomData(8<<20, 7)
	w.write(t, w.b, rel, string(data))
	w.push(t, w.optB)
	if _, err := Pull(ctx, w.optA); err != nil {
		t.Fatalf("pull a: %v\n%s", err, w.log.String())
	}
	// b changes the end of the file, as a game saving one chunk of a
	// region does.
	copy(data[len(data)-1000:], bytes.Repeat([]byte("x"), 1000))
	w.write(t, w.b, rel, string(data))
	name := filepath.Join(w.b, filepath.FromSlash(rel))
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, 0o640); err != nil {
		t.Fatal(err)
	}
	pushed := w.push(t, w.optB)

	var mu sync.Mutex
	var others []string
	var dataBytes int64
	w.srv.SetHook(func(_ http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if ua := r.Header.Get("User-Agent"); ua != "instance-sync" {
			others = append(others, ua+" "+r.Method+" "+r.URL.Path)
		}
		if strings.Contains(r.URL.Path, "/data/") {
			from, to, ok := strings.Cut(strings.TrimPrefix(r.Header.Get("Range"), "bytes="), "-")
			a, err1 := strconv.ParseInt(from, 10, 64)
			b, err2 := strconv.ParseInt(to, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				t.Errorf("a whole data file was read: %s", r.URL.Path)
			}
			dataBytes += b - a + 1
		}
		return false
	})
	r, err := Pull(ctx, w.optA)
	w.srv.SetHook(nil)
	if err != nil || r.Action != ActionFastForward || r.Snapshot != pushed.Snapshot {
		t.Fatalf("pull a: %+v, %v\n%s", r, err, w.log.String())
	}
	if len(others) > 0 {
		t.Errorf("restic ran for a small restore:\n%s", strings.Join(others, "\n"))
	}
	got, err := os.ReadFile(filepath.Join(w.a, filepath.FromSlash(rel)))
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("a's %s differs from b's (%d bytes, %v)", rel, len(got), err)
	}
	fi, err := os.Stat(filepath.Join(w.a, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime %s, want the snapshot's %s", fi.ModTime(), mtime)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the snapshot's 0640", fi.Mode().Perm())
	}
	// The unchanged blobs came from a's own copy: what was read from
	// data files is the changed blob and the trees, far less than the file.
	if dataBytes >= int64(len(data))/2 {
		t.Errorf("read %d bytes of data files for a change at the end of an %d-byte file", dataBytes, len(data))
	}
}

// TestSmallPullDamagedBlob: a blob whose stored bytes were damaged on the
// server does not authenticate: the pull writes nothing into the pack
// folder, says so, and the game starts with the files as they were.
func TestSmallPullDamagedBlob(t *testing.T) {
	w := newTwoSynced(t)
	ctx := context.Background()
	packs := func() map[string]int64 {
		out := map[string]int64{}
		filepath.WalkDir(filepath.Join(w.instanceRepo, "data"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					out[p] = fi.Size()
				}
			}
			return nil
		})
		return out
	}
	before := packs()
	const rel = "saves/W/region/r.2.0.mca"
	w.write(t, w.b, rel, string(randomData(2<<20, 9)))
	w.write(t, w.b, "options.txt", "v2 options")
	w.push(t, w.optB)
	// The largest new data file holds the new file's blobs (restic keeps
	// trees in data files of their own, far smaller).
	var victim string
	var size int64
	for p, n := range packs() {
		if _, old := before[p]; !old && n > size {
			victim, size = p, n
		}
	}
	if size < 1<<20 {
		t.Fatalf("no new data file holds the new blobs (largest %d bytes)", size)
	}
	stored, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	stored[len(stored)/3] ^= 0xff
	os.Chmod(victim, 0o600)
	if err := os.WriteFile(victim, stored, 0o600); err != nil {
		t.Fatal(err)
	}
	optionsBefore, _ := os.ReadFile(filepath.Join(w.a, "options.txt"))
	r, err := Pull(ctx, w.optA)
	if err != nil || r.Action != ActionNotRestored || !strings.Contains(r.Message, "nothing was changed") {
		t.Fatalf("pull a of a damaged blob: %+v, %v\n%s", r, err, w.log.String())
	}
	if _, err := os.Lstat(filepath.Join(w.a, filepath.FromSlash(rel))); !os.IsNotExist(err) {
		t.Errorf("%s was written from a damaged blob (%v)", rel, err)
	}
	if got, _ := os.ReadFile(filepath.Join(w.a, "options.txt")); !bytes.Equal(got, optionsBefore) {
		t.Errorf("options.txt changed by a pull that failed: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(w.a, ".cloud-sync", "staging")); !os.IsNotExist(err) {
		t.Errorf("the staging folder is left behind (%v)", err)
	}
}

// TestChangedBetween: the cloud side of a conflict (the files a head
// changed since this computer's last sync, their size and worlds) comes
// from the two snapshots' trees, read in-process: no restic run, where
// "restic diff" and "restic ls" each cost a key derivation.
func TestChangedBetween(t *testing.T) {
	w := newTwoSynced(t)
	ctx := context.Background()
	st, err := instance.Paths{Pack: w.a}.LoadState()
	if err != nil || st.Last == "" {
		t.Fatalf("a's state: %v", err)
	}
	w.write(t, w.b, "saves/W/level.dat", "v2 level")  // changed, 8 bytes
	w.write(t, w.b, "saves/X/level.dat", "new world") // added, 9 bytes
	if err := os.Remove(filepath.Join(w.b, "saves", "W", "playerdata", "p.dat")); err != nil {
		t.Fatal(err)
	}
	w.write(t, w.b, "logs/latest.log", "not in scope")
	head := w.push(t, w.optB).Snapshot

	var mu sync.Mutex
	var others []string
	w.srv.SetHook(func(_ http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if ua := r.Header.Get("User-Agent"); ua != "instance-sync" {
			others = append(others, ua+" "+r.Method+" "+r.URL.Path)
		}
		return false
	})
	defer w.srv.SetHook(nil)
	s, err := open(w.optA)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	paths, size, ok := s.changedBetween(ctx, st.Last, head)
	want := []string{"saves/W/level.dat", "saves/W/playerdata/p.dat", "saves/X/level.dat"}
	if !ok || !slices.Equal(paths, want) || size != 17 {
		t.Errorf("changedBetween = %q, %d bytes, %v; want %q, 17 bytes", paths, size, ok, want)
	}
	if _, _, ok := s.changedBetween(ctx, strings.Repeat("0", 64), head); ok {
		t.Error("a snapshot that is not in the repository was compared")
	}
	if len(others) > 0 {
		t.Errorf("restic ran to compare two snapshots:\n%s", strings.Join(others, "\n"))
	}
}
