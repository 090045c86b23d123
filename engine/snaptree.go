package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"git.timemachine.center/timemachine/instance-sync/repofile"
)

// snapItem is one file, folder or other item of a snapshot, as its tree
// records it.
type snapItem = repofile.Node

// snapshotItems lists the items of snapshot id that lie in or above the
// scope's include entries: slash-separated path (relative to the pack
// folder) → item. It reads the repository's index and the snapshot's trees
// itself with the cached master key: asking restic ("restic ls") would
// cost a process start and restic's key derivation, most of a second, on
// every restore. The restore needs each file's size and mtime before
// restic runs (see stage).
func (s *session) snapshotItems(ctx context.Context, id string) (map[string]snapItem, error) {
	// The snapshot file first: one that is gone (retention, a repository
	// made again) needs no key, which may cost a restic run to fetch.
	s.snapMu.Lock()
	file, ok := s.snapFiles[id]
	s.snapMu.Unlock()
	var err error
	if !ok {
		if file, err = s.server.SnapshotFile(ctx, s.cfg.InstanceID, id); err != nil {
			return nil, err
		}
	}
	key, ok, err := s.masterKey(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("the repository's master key cannot be cached; the restore needs it to read the snapshot")
	}
	sn, err := key.Snapshot(id, file)
	if err != nil {
		if errors.Is(err, repofile.ErrMAC) {
			_ = s.paths.ForgetMasterKey()
		}
		return nil, err
	}
	trees, err := s.treeIndex(ctx, key)
	if err != nil {
		return nil, err
	}
	items := map[string]snapItem{}
	level := []string{""} // folders whose trees are read next
	ids := map[string]string{"": sn.Tree}
	read := &treeReader{key: key, trees: trees, fetched: map[string][]*fetchedSpan{}}
	for len(level) > 0 {
		nodes, err := s.readTrees(ctx, read, level, ids)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", short(id), err)
		}
		var next []string
		for i, dir := range level {
			for _, n := range nodes[i] {
				p := n.Name
				if dir != "" {
					p = dir + "/" + n.Name
				}
				if !s.underOrAbove(p) {
					continue
				}
				items[p] = n
				if n.Type == "dir" {
					next = append(next, p)
					ids[p] = n.Subtree
				}
			}
		}
		level = next
	}
	return items, nil
}

// underOrAbove reports whether p is inside an include entry or a folder
// above one.
func (s *session) underOrAbove(p string) bool {
	if s.scope.Included(p) {
		return true
	}
	for _, inc := range s.scope.Include {
		if strings.HasPrefix(inc, p+"/") {
			return true
		}
	}
	return false
}

// blobIndex is where each blob of the repository lies, by blob id.
type blobIndex struct {
	trees, data map[string]repofile.BlobLocation
}

// treesAhead is the index being read ahead of the restore.
type treesAhead struct {
	done chan struct{}
	key  repofile.Key
	idx  blobIndex
	err  error
}

// prefetchTrees starts reading the repository's index, when the master
// key is cached: a pull that found new snapshots reads it while their
// metadata comes in, instead of after.
func (s *session) prefetchTrees(ctx context.Context) {
	if s.treesAhead != nil {
		return
	}
	key, ok := s.paths.LoadMasterKey()
	if !ok {
		return
	}
	a := &treesAhead{done: make(chan struct{}), key: key}
	s.treesAhead = a
	go func() {
		defer close(a.done)
		a.idx, a.err = s.readIndex(ctx, key)
	}()
}

// treeIndex returns where each tree blob lies.
func (s *session) treeIndex(ctx context.Context, key repofile.Key) (map[string]repofile.BlobLocation, error) {
	idx, err := s.index(ctx, key)
	return idx.trees, err
}

// index returns the repository's index: what prefetchTrees read with the
// same key (or why it could not: a server that failed it would only be
// waited for again), else every index file read now.
func (s *session) index(ctx context.Context, key repofile.Key) (blobIndex, error) {
	if a := s.treesAhead; a != nil {
		<-a.done
		if a.key == key {
			return a.idx, a.err
		}
		s.treesAhead = nil
	}
	idx, err := s.readIndex(ctx, key)
	if err == nil {
		// Kept for the session: a merge reads several snapshots' trees,
		// and the index only grows while the session runs.
		done := make(chan struct{})
		close(done)
		s.treesAhead = &treesAhead{done: done, key: key, idx: idx}
	}
	return idx, err
}

// readIndex reads every index file and returns where each blob lies.
func (s *session) readIndex(ctx context.Context, key repofile.Key) (blobIndex, error) {
	names, err := s.server.ListFiles(ctx, s.cfg.InstanceID, "index")
	if err != nil {
		return blobIndex{}, err
	}
	parts := make([]blobIndex, len(names))
	err = parallel(ctx, len(names), func(ctx context.Context, i int) error {
		file, err := s.server.ReadFile(ctx, s.cfg.InstanceID, "index", names[i], 0, 0)
		if err != nil {
			return err
		}
		parts[i].trees, parts[i].data, err = key.Index(names[i], file)
		return err
	})
	if err != nil {
		return blobIndex{}, err
	}
	out := blobIndex{trees: map[string]repofile.BlobLocation{}, data: map[string]repofile.BlobLocation{}}
	for _, p := range parts {
		maps.Copy(out.trees, p.trees)
		maps.Copy(out.data, p.data)
	}
	return out, nil
}

// treeReader reads a snapshot's trees level by level, keeping what it
// downloaded.
type treeReader struct {
	key   repofile.Key
	trees map[string]repofile.BlobLocation
	// extents are the stretch of each data file that holds tree blobs.
	extents map[string][2]int64
	mu      sync.Mutex
	fetched map[string][]*fetchedSpan // by data file
}

// fetchedSpan is a stretch of a data file already downloaded.
type fetchedSpan struct {
	start int64
	data  []byte
}

// wholeTreesLimit bounds the stretch of a data file fetched whole for its
// trees: restic writes the trees of a backup into data files of their
// own, so the first level's request can bring every level below it,
// instead of one round trip per level.
const wholeTreesLimit = 2 << 20

// extent is the stretch of pack that holds tree blobs.
func (r *treeReader) extent(pack string) (start, end int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.extents == nil {
		r.extents = map[string][2]int64{}
		for _, loc := range r.trees {
			e, ok := r.extents[loc.Pack]
			if !ok {
				e = [2]int64{loc.Offset, loc.Offset + loc.Length}
			}
			r.extents[loc.Pack] = [2]int64{min(e[0], loc.Offset), max(e[1], loc.Offset+loc.Length)}
		}
	}
	e := r.extents[pack]
	return e[0], e[1]
}

// cached returns the bytes of loc when a fetched stretch holds them.
func (r *treeReader) cached(loc repofile.BlobLocation) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.fetched[loc.Pack] {
		if loc.Offset >= f.start && loc.Offset+loc.Length <= f.start+int64(len(f.data)) {
			return f.data[loc.Offset-f.start : loc.Offset-f.start+loc.Length], true
		}
	}
	return nil, false
}

// readTrees reads the trees of the folders dirs (ids maps each to its
// tree's blob id). Trees that lie in one data file are fetched with one
// request for the stretch that holds them: restic packs trees together,
// and a folder of worlds holds hundreds of small trees. When a data
// file's trees fit in wholeTreesLimit, all of them come at once.
func (s *session) readTrees(ctx context.Context, r *treeReader, dirs []string, ids map[string]string) ([][]repofile.Node, error) {
	out := make([][]repofile.Node, len(dirs))
	type span struct {
		pack       string
		start, end int64
		dirs       []int
	}
	var spans []*span
	byPack := map[string][]*span{}
	parse := func(i int, raw []byte) error {
		id := ids[dirs[i]]
		plain, err := r.key.Blob(id, r.trees[id], raw)
		if err != nil {
			return err
		}
		out[i], err = repofile.ParseTree(plain)
		return err
	}
	for i, dir := range dirs {
		loc, ok := r.trees[ids[dir]]
		if !ok {
			return nil, fmt.Errorf("tree %s of %q is in no index", short(ids[dir]), dir)
		}
		if raw, ok := r.cached(loc); ok {
			if err := parse(i, raw); err != nil {
				return nil, err
			}
			continue
		}
		var sp *span
		for _, c := range byPack[loc.Pack] {
			// Join a stretch when the result stays under 8 MiB.
			if min(c.start, loc.Offset)+8<<20 > max(c.end, loc.Offset+loc.Length) {
				sp = c
				break
			}
		}
		if sp == nil {
			sp = &span{pack: loc.Pack, start: loc.Offset, end: loc.Offset}
			if start, end := r.extent(loc.Pack); end-start <= wholeTreesLimit {
				sp.start, sp.end = start, end
			}
			byPack[loc.Pack] = append(byPack[loc.Pack], sp)
			spans = append(spans, sp)
		}
		sp.start, sp.end = min(sp.start, loc.Offset), max(sp.end, loc.Offset+loc.Length)
		sp.dirs = append(sp.dirs, i)
	}
	err := parallel(ctx, len(spans), func(ctx context.Context, j int) error {
		sp := spans[j]
		data, err := s.server.ReadFile(ctx, s.cfg.InstanceID, "data", sp.pack, sp.start, sp.end-sp.start)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.fetched[sp.pack] = append(r.fetched[sp.pack], &fetchedSpan{start: sp.start, data: data})
		r.mu.Unlock()
		for _, i := range sp.dirs {
			loc := r.trees[ids[dirs[i]]]
			if err := parse(i, data[loc.Offset-sp.start:loc.Offset-sp.start+loc.Length]); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// parallel runs f(0..n-1), eight at a time, and returns the first error.
// That error cancels the ctx the others run with and starts no more: when
// the server stops answering, the caller waits for one request's timeout,
// not for one a batch.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}
