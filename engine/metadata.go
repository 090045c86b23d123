package engine

import (
	"context"
	"errors"
	"sync"

	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/repofile"
	"git.timemachine.center/timemachine/instance-sync/restic"
)

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
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			file, err := s.server.SnapshotFile(ctx, s.cfg.InstanceID, id)
			if errors.Is(err, remote.ErrNotFound) {
				return
			}
			if err == nil {
				out[i], err = key.Snapshot(id, file)
			}
			found[i], errs[i] = err == nil, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
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
