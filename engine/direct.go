package engine

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"git.timemachine.center/timemachine/instance-sync/repofile"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// A pull whose changed files are few and small downloads them itself:
// restic would spend most of a second deriving its key and reading the
// repository before its first byte, where the pull already holds the
// master key, the index and the snapshot's trees. Larger restores are
// restic's.
const (
	directMaxBytes = 256 << 20 // the files' total size
	directMaxFiles = 4096
	// directSpan bounds one request: blobs that lie close together in a
	// data file come in one request of at most this many bytes.
	directSpan = 2 << 20
	// directGap is the most bytes between two blobs one request reads
	// over rather than asking twice.
	directGap = 256 << 10
)

// directTimeout bounds each request of a direct download: longer than
// the server's usual bound, since one brings up to 8 MiB (restic's
// largest chunk) through what may be a slow line.
const directTimeout = 45 * time.Second

// blobUse is where one blob's bytes go: the file (an index into the
// download list) and the offset in it.
type blobUse struct {
	file int
	off  int64
}

// directPlan is a download the pull makes itself.
type directPlan struct {
	key   repofile.Key
	files []string // slash paths, relative to the pack folder
	locs  map[string]repofile.BlobLocation
	// blobs lists, per file, each content blob with its offset.
	blobs [][]blobAt
	total int64
}

type blobAt struct {
	id  string
	off int64
	n   int64
}

// planDirect returns the direct download of files (items of want), or
// false when restic restores them: too many or too large, the master key
// not cached, or a blob that no index names (the snapshot is then
// restic's to read, and to complain about).
func (s *session) planDirect(ctx context.Context, files []string, want map[string]snapItem) (directPlan, bool) {
	if s.opt.ResticRestore || len(files) == 0 || len(files) > directMaxFiles {
		return directPlan{}, false
	}
	var total int64
	for _, p := range files {
		it := want[p]
		if it.Type != "file" || it.Size < 0 {
			return directPlan{}, false
		}
		total += it.Size
	}
	if total > directMaxBytes {
		return directPlan{}, false
	}
	key, ok := s.paths.LoadMasterKey()
	if !ok {
		return directPlan{}, false
	}
	idx, err := s.index(ctx, key)
	if err != nil || idx.data == nil {
		return directPlan{}, false
	}
	plan := directPlan{key: key, files: files, locs: map[string]repofile.BlobLocation{}, blobs: make([][]blobAt, len(files)), total: total}
	for i, p := range files {
		var off int64
		for _, id := range want[p].Content {
			loc, ok := idx.data[id]
			if !ok {
				return directPlan{}, false
			}
			n := loc.PlainLength()
			if n <= 0 {
				return directPlan{}, false
			}
			plan.locs[id] = loc
			plan.blobs[i] = append(plan.blobs[i], blobAt{id: id, off: off, n: n})
			off += n
		}
		if off != want[p].Size {
			return directPlan{}, false
		}
	}
	return plan, true
}

// fetchDirect writes the plan's files into the staging folder st: each
// blob's bytes come from the live file when it holds them at the same
// place (their SHA-256 is the blob's id), else from the server, decrypted
// and checked against their id. Then each file gets the snapshot's mode
// and mtime, as restic would give it.
func (s *session) fetchDirect(ctx context.Context, st string, plan directPlan, want map[string]snapItem, need int64) error {
	u := s.opt.UI
	u.ProgressStart("pull")
	defer u.ProgressDone()
	var done atomic.Int64
	var filesDone atomic.Int64
	report := func(n int64) {
		d := done.Add(n)
		pct := 100.0
		if plan.total > 0 {
			pct = float64(d) * 100 / float64(plan.total)
		}
		u.ProgressUpdate(ui.Progress{Op: "pull", Percent: pct, BytesDone: d, BytesTotal: plan.total,
			FilesDone: filesDone.Load(), FilesTotal: int64(len(plan.files))})
	}
	staged := func(i int) string { return filepath.Join(st, filepath.FromSlash(plan.files[i])) }
	made := map[string]bool{}
	for i := range plan.files {
		dst := staged(i)
		if d := filepath.Dir(dst); !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return s.diskError(err, need)
			}
			made[d] = true
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return s.diskError(err, need)
		}
		err = f.Truncate(want[plan.files[i]].Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return s.diskError(err, need)
		}
	}
	s.fault("seeded")
	// What the live files already hold.
	var mu sync.Mutex
	missing := map[string][]blobUse{}
	err := parallel(ctx, len(plan.files), func(ctx context.Context, i int) error {
		kept, err := s.keepLocal(plan.files[i], staged(i), plan.blobs[i])
		if err != nil {
			return s.diskError(err, need)
		}
		var n int64
		mu.Lock()
		for j, b := range plan.blobs[i] {
			if kept[j] {
				n += b.n
				continue
			}
			missing[b.id] = append(missing[b.id], blobUse{file: i, off: b.off})
		}
		mu.Unlock()
		report(n)
		return nil
	})
	if err != nil {
		return err
	}
	// The rest from the server, blobs close together in one request.
	srv := s.server
	srv.Timeout = max(srv.Timeout, directTimeout)
	spans := directSpans(plan.locs, missing)
	err = parallel(ctx, len(spans), func(ctx context.Context, j int) error {
		sp := spans[j]
		data, err := srv.ReadFile(ctx, s.cfg.InstanceID, "data", sp.pack, sp.start, sp.end-sp.start)
		if err != nil {
			return err
		}
		for _, id := range sp.blobs {
			loc := plan.locs[id]
			plain, err := plan.key.Blob(id, loc, data[loc.Offset-sp.start:loc.Offset-sp.start+loc.Length])
			if err != nil {
				return err
			}
			for _, use := range missing[id] {
				if err := writeAt(staged(use.file), plain, use.off); err != nil {
					return s.diskError(err, need)
				}
				report(int64(len(plain)))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, p := range plan.files {
		it := want[p]
		dst := staged(i)
		if err := os.Chmod(dst, fs.FileMode(it.Mode).Perm()); err != nil {
			return err
		}
		if err := os.Chtimes(dst, it.MTime, it.MTime); err != nil {
			return err
		}
		filesDone.Add(1)
	}
	report(0)
	return nil
}

// dropStaleLocks does for a pull that restored without restic what
// starting restic would have done: when a killed run left a lock on the
// server (the lock check that ran with the listing saw one, or an
// earlier unlock failed), "restic unlock" removes the stale ones. Left
// there, a lock holds the server's retention off for half an hour.
func (s *session) dropStaleLocks(ctx context.Context) {
	if s.restic != nil {
		return
	}
	if a := s.ahead; a != nil {
		<-a.done
		if !a.locks && !s.state.UnlockPending {
			return
		}
	} else if !s.state.UnlockPending {
		return
	}
	_, _ = s.resticClient(ctx) // it unlocks what it finds stale
}

// keepLocal copies into the staged file dst the blobs that the live file
// of rel holds at the same offsets, and reports which it copied. A live
// file that cannot be read keeps nothing: its blobs are downloaded.
func (s *session) keepLocal(rel, dst string, blobs []blobAt) ([]bool, error) {
	kept := make([]bool, len(blobs))
	in, err := os.Open(s.live(rel))
	if err != nil {
		return kept, nil
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return kept, nil
	}
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	var buf []byte
	for j, b := range blobs {
		if b.off+b.n > fi.Size() {
			break
		}
		if int64(cap(buf)) < b.n {
			buf = make([]byte, b.n)
		}
		buf = buf[:b.n]
		if _, err := in.ReadAt(buf, b.off); err != nil && err != io.EOF {
			return kept, nil
		}
		sum := sha256.Sum256(buf)
		want, err := hex.DecodeString(b.id)
		if err != nil || !bytes.Equal(sum[:], want) {
			continue
		}
		if _, err := out.WriteAt(buf, b.off); err != nil {
			return nil, err
		}
		kept[j] = true
	}
	return kept, out.Close()
}

// writeAt writes p at off in the file name.
func writeAt(name string, p []byte, off int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(p, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// directRange is one request: a stretch of a data file and the blobs in
// it.
type directRange struct {
	pack       string
	start, end int64
	blobs      []string
}

// directSpans groups the blobs of missing into requests: by data file, in
// order of offset, joined while a request stays within directSpan and the
// bytes read over between two blobs within directGap.
func directSpans(locs map[string]repofile.BlobLocation, missing map[string][]blobUse) []*directRange {
	byPack := map[string][]string{}
	for id := range missing {
		loc := locs[id]
		byPack[loc.Pack] = append(byPack[loc.Pack], id)
	}
	var out []*directRange
	packs := make([]string, 0, len(byPack))
	for p := range byPack {
		packs = append(packs, p)
	}
	slices.Sort(packs)
	for _, pack := range packs {
		ids := byPack[pack]
		slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(locs[a].Offset, locs[b].Offset) })
		var cur *directRange
		for _, id := range ids {
			loc := locs[id]
			end := loc.Offset + loc.Length
			if cur != nil && loc.Offset >= cur.end && loc.Offset-cur.end <= directGap && end-cur.start <= directSpan {
				cur.end = end
				cur.blobs = append(cur.blobs, id)
				continue
			}
			cur = &directRange{pack: pack, start: loc.Offset, end: end, blobs: []string{id}}
			out = append(out, cur)
		}
	}
	return out
}
