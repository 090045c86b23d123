package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime/debug"
	"slices"
	"time"

	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/repofile"
	"git.timemachine.center/timemachine/instance-sync/restic"
)

// chooseKey sets rc's --key-hint to the repository key its config was
// written with. Two computers that create the repository at the same
// moment (a copied instance folder, a repository created again) each
// write a key before one of them writes the config; the append-only
// server keeps both, and both open with the player's password. restic
// takes the first key that opens, and with the other one every run fails
// ("ciphertext verification failed"), so restic is told which key to try
// first. The choice is kept in state; a key listing (one request) checks
// it is still there. Finding it among several keys costs a key derivation
// per key (most of a second each), once per computer.
//
// The config is read before the keys are listed: a key is written before
// its config, so a list read after the config holds the config's key. A
// list read before it, while another computer was creating the
// repository, may hold only a stray key. exists reports whether the
// repository has its config (the file written last when it is created).
func (s *session) chooseKey(ctx context.Context, rc *restic.Client) (exists bool, err error) {
	config, err := s.server.ConfigFile(ctx, s.cfg.InstanceID)
	if errors.Is(err, remote.ErrNotFound) {
		rc.KeyHint = "" // being created: the key is chosen once it has a config
		return false, nil
	}
	if err != nil {
		return false, err
	}
	keys, err := s.server.ListKeys(ctx, s.cfg.InstanceID)
	if err != nil {
		return true, err
	}
	if slices.Contains(keys, s.state.KeyHint) {
		rc.KeyHint = s.state.KeyHint
		return true, nil
	}
	hint := ""
	switch len(keys) {
	case 0:
		return true, fmt.Errorf("the cloud repository for instance %s has a config but no key; ask the server's operator to check the repository", s.cfg.InstanceID)
	case 1:
		hint = keys[0] // the config's key: it was written before the config
	default:
		var master repofile.Key
		if hint, master, err = s.findConfigKey(ctx, keys, config); err != nil {
			return true, err
		}
		// The master key restic would have given is this one.
		_ = s.paths.SaveMasterKey(master)
	}
	rc.KeyHint = hint
	s.state.KeyHint = hint
	return true, s.save()
}

// chooseKeyFrom is chooseKey with the keys listed already (with the
// listing, in parallel): the key kept in state is taken when the list
// still has it; otherwise the choice is made again from a list read after
// the config (chooseKey).
func (s *session) chooseKeyFrom(ctx context.Context, rc *restic.Client, keys []string) error {
	if len(keys) == 0 {
		rc.KeyHint = "" // no repository yet
		return nil
	}
	if slices.Contains(keys, s.state.KeyHint) {
		rc.KeyHint = s.state.KeyHint
		return nil
	}
	_, err := s.chooseKey(ctx, rc)
	return err
}

// findConfigKey derives each key that opens with the password until one
// holds the master key that opens config.
func (s *session) findConfigKey(ctx context.Context, keys []string, config []byte) (string, repofile.Key, error) {
	opened := 0
	for _, id := range keys {
		file, err := s.server.KeyFile(ctx, s.cfg.InstanceID, id)
		if errors.Is(err, remote.ErrNotFound) {
			continue // removed since the listing (a password rotation)
		}
		if err != nil {
			return "", repofile.Key{}, err
		}
		master, err := repofile.OpenKeyFile(file, s.token.Password)
		if err != nil {
			continue // another password's key, or not a key restic wrote
		}
		opened++
		if master.OpensConfig(config) {
			return id, master, nil
		}
	}
	return "", repofile.Key{}, fmt.Errorf("none of the %d keys of the cloud repository for instance %s opens its config (%d open with this token's password); ask the server's operator to check the repository", len(keys), s.cfg.InstanceID, opened)
}

// initRepository creates the cloud repository: what "restic init" writes
// (the folders, a key holding a new master key, then the config), written
// here. restic's init spends about two seconds timing key derivations
// before the one it needs; the parameters chosen here are the ones it
// would choose (repofile.CalibrateScrypt), and the new key's id is known
// without a key listing. When another computer created the repository at
// the same moment, the server refuses the second config: that repository
// is used (its key is chosen by chooseKey, and this computer's stray key
// stays unused, as restic's init would leave it).
func (s *session) initRepository(ctx context.Context, rc *restic.Client) error {
	id := s.cfg.InstanceID
	if s.newRepo == nil {
		// Not prepared before the walk (a repository that vanished since
		// the last sync): made now, as prepareFirstPush does.
		if err := s.prepareNewRepository(ctx); err != nil {
			return err
		}
	}
	repo := *s.newRepo
	if err := s.server.SaveFile(ctx, id, "keys/"+repo.KeyID, repo.KeyFile); err != nil {
		return err
	}
	err := s.server.SaveFile(ctx, id, "config", repo.Config)
	if errors.Is(err, remote.ErrRefused) {
		// Refused because another computer's config is there, or for
		// another reason (then err stands).
		exists, cerr := s.chooseKey(ctx, rc)
		if exists && cerr != nil {
			return cerr
		}
		if exists {
			s.opt.UI.Info("another computer created the cloud repository at the same moment; using that one")
			return nil
		}
	}
	if err != nil {
		return err
	}
	rc.KeyHint, s.state.KeyHint = repo.KeyID, repo.KeyID
	// What restic would give when asked for the master key.
	_ = s.paths.SaveMasterKey(repo.Master)
	return s.save()
}

// newRepository makes a new repository's key and config for password,
// with the user and host names restic's init writes into the key. The
// key derivations hold 32 MiB each (restic's cost); that memory is given
// back to the system before it returns.
func newRepository(password string) (repofile.NewRepository, error) {
	defer debug.FreeOSMemory()
	params, err := repofile.CalibrateScrypt()
	if err != nil {
		return repofile.NewRepository{}, err
	}
	host, _ := os.Hostname()
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return repofile.CreateRepository(password, params, name, host, time.Now())
}

// prepareFirstPush starts a push from a computer that has not synced yet
// (no last sync): the listing comes before the walk, and when the cloud
// has no repository (or one without snapshots, which may be half-created)
// the key and config to create it with are made now. Their key
// derivation holds 32 MiB for most of a second; before the walk, that
// memory is given back before the walk's grows (about 20 MB at 250,000
// files), so the push's peak is the larger of the two, not their sum.
// The work is the same as after the walk.
func (s *session) prepareFirstPush(ctx context.Context) error {
	// restic runs later: what it needs from the server comes in while
	// the listing does.
	s.prefetchRestic(ctx)
	listing, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
	if err != nil {
		return listingError(err)
	}
	s.firstListing = &listing
	if listing.Exists && len(listing.Snapshots) > 0 {
		return nil
	}
	return s.prepareNewRepository(ctx)
}

// prepareNewRepository asks the server to create the repository's
// folders while it makes the key and config to write into it.
func (s *session) prepareNewRepository(ctx context.Context) error {
	created := make(chan error, 1)
	go func() { created <- s.server.CreateRepository(ctx, s.cfg.InstanceID) }()
	repo, err := newRepository(s.token.Password)
	if cerr := <-created; cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("creating the cloud repository's key: %w", err)
	}
	s.newRepo = &repo
	return nil
}
