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
	key, ok, err := s.masterKey(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("the repository's master key cannot be cached; the restore needs it to read the snapshot")
	}
	file, err := s.server.SnapshotFile(ctx, s.cfg.InstanceID, id)
	if err != nil {
		return nil, err
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
	for len(level) > 0 {
		nodes, err := s.readTrees(ctx, key, trees, level, ids)
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

// treeIndex reads every index file and returns where each tree blob lies.
func (s *session) treeIndex(ctx context.Context, key repofile.Key) (map[string]repofile.BlobLocation, error) {
	names, err := s.server.ListFiles(ctx, s.cfg.InstanceID, "index")
	if err != nil {
		return nil, err
	}
	parts := make([]map[string]repofile.BlobLocation, len(names))
	err = parallel(ctx, len(names), func(i int) error {
		file, err := s.server.ReadFile(ctx, s.cfg.InstanceID, "index", names[i], 0, 0)
		if err != nil {
			return err
		}
		parts[i], err = key.Index(names[i], file)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]repofile.BlobLocation{}
	for _, p := range parts {
		maps.Copy(out, p)
	}
	return out, nil
}

// readTrees reads the trees of the folders dirs (ids maps each to its
// tree's blob id). Trees that lie in one data file are fetched with one
// request for the stretch that holds them: restic packs trees together,
// and a folder of worlds holds hundreds of small trees.
func (s *session) readTrees(ctx context.Context, key repofile.Key, trees map[string]repofile.BlobLocation, dirs []string, ids map[string]string) ([][]repofile.Node, error) {
	out := make([][]repofile.Node, len(dirs))
	type span struct {
		pack       string
		start, end int64
		dirs       []int
	}
	var spans []*span
	byPack := map[string][]*span{}
	for i, dir := range dirs {
		loc, ok := trees[ids[dir]]
		if !ok {
			return nil, fmt.Errorf("tree %s of %q is in no index", short(ids[dir]), dir)
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
			byPack[loc.Pack] = append(byPack[loc.Pack], sp)
			spans = append(spans, sp)
		}
		sp.start, sp.end = min(sp.start, loc.Offset), max(sp.end, loc.Offset+loc.Length)
		sp.dirs = append(sp.dirs, i)
	}
	err := parallel(ctx, len(spans), func(j int) error {
		sp := spans[j]
		data, err := s.server.ReadFile(ctx, s.cfg.InstanceID, "data", sp.pack, sp.start, sp.end-sp.start)
		if err != nil {
			return err
		}
		for _, i := range sp.dirs {
			id := ids[dirs[i]]
			loc := trees[id]
			plain, err := key.Blob(id, loc, data[loc.Offset-sp.start:loc.Offset-sp.start+loc.Length])
			if err != nil {
				return err
			}
			if out[i], err = repofile.ParseTree(plain); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// parallel runs f(0..n-1), eight at a time, and returns the first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	sem := make(chan struct{}, 8)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
