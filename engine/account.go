package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"git.timemachine.center/timemachine/instance-sync/instance"
)

// Relogin stores a new token for an opted-in instance after the server
// refused the old one (the operator rotated the password or re-enabled
// the account): where the sync reads it (opt.TokenFile, else the
// instance's own place in the user's config folder), mode 0600. The token must be for the instance's
// user: another account has no access to its repository.
func Relogin(opt Options, tok instance.Token) error {
	if err := opt.defaults(); err != nil {
		return err
	}
	p := instance.Paths{Pack: opt.PackFolder}
	cfg, err := p.LoadConfig()
	if err != nil {
		return err
	}
	if tok.User != cfg.User {
		return fmt.Errorf("this instance is synced by user %s, not %s; log in as %s", cfg.User, tok.User, cfg.User)
	}
	if opt.userDirsErr != nil {
		return opt.userDirsErr
	}
	path := opt.TokenFile
	if path == "" {
		path = opt.UserDirs.TokenFile(cfg)
		// An older version's token in the pack folder would be moved over
		// the new one at the next sync.
		if err := os.Remove(p.LegacyToken()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return instance.WriteToken(path, tok)
}

// SyncURL is the server an opted-in instance syncs with and the user it
// syncs as (sync.json), for asking the player to log in again.
func SyncURL(opt Options) (url, user string, err error) {
	if err := opt.defaults(); err != nil {
		return "", "", err
	}
	cfg, err := instance.Paths{Pack: opt.PackFolder}.LoadConfig()
	if errors.Is(err, instance.ErrNotOptedIn) {
		return "", "", err
	}
	return cfg.URL, cfg.User, err
}
