package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
func (s *session) chooseKey(ctx context.Context, rc *restic.Client) error {
	keys, err := s.server.ListKeys(ctx, s.cfg.InstanceID)
	if err != nil {
		return err
	}
	return s.chooseKeyFrom(ctx, rc, keys, false)
}

// chooseKeyFrom is chooseKey with the keys listed. created says this
// session has just created the repository: its config exists, and a
// lone key is the one that opens it.
func (s *session) chooseKeyFrom(ctx context.Context, rc *restic.Client, keys []string, created bool) error {
	if len(keys) == 0 {
		rc.KeyHint = "" // no repository yet
		return nil
	}
	if slices.Contains(keys, s.state.KeyHint) {
		rc.KeyHint = s.state.KeyHint
		return nil
	}
	if created && len(keys) == 1 {
		rc.KeyHint, s.state.KeyHint = keys[0], keys[0]
		return s.save()
	}
	config, err := s.server.ConfigFile(ctx, s.cfg.InstanceID)
	if errors.Is(err, remote.ErrNotFound) {
		rc.KeyHint = "" // being created: the key is chosen once it has a config
		return nil
	}
	if err != nil {
		return err
	}
	hint := ""
	if len(keys) == 1 {
		hint = keys[0] // the config's key: it was written before the config
	} else {
		var master repofile.Key
		if hint, master, err = s.findConfigKey(ctx, keys, config); err != nil {
			return err
		}
		// The master key restic would have given is this one.
		_ = s.paths.SaveMasterKey(master)
	}
	rc.KeyHint = hint
	s.state.KeyHint = hint
	return s.save()
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

// initRepository creates the cloud repository. When another computer
// created it at the same moment, restic's init fails on the config the
// other one wrote first: that repository is used (its key is chosen by
// chooseKey, and this computer's stray key stays unused).
func (s *session) initRepository(ctx context.Context, rc *restic.Client) error {
	err := s.withUnlock(ctx, rc, func() error { return rc.Init(ctx) })
	if err != nil {
		if _, cerr := s.server.ConfigFile(ctx, s.cfg.InstanceID); cerr != nil {
			return err
		}
		s.opt.UI.Info("another computer created the cloud repository at the same moment; using that one")
		return s.chooseKey(ctx, rc)
	}
	keys, err := s.server.ListKeys(ctx, s.cfg.InstanceID)
	if err != nil {
		return err
	}
	return s.chooseKeyFrom(ctx, rc, keys, true)
}

// hasConfig reports whether the cloud repository has its config, the
// file restic writes last when it creates a repository.
func (s *session) hasConfig(ctx context.Context) (bool, error) {
	_, err := s.server.ConfigFile(ctx, s.cfg.InstanceID)
	if errors.Is(err, remote.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
