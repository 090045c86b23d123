package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"git.timemachine.center/timemachine/instance-sync/instance"
)

// ResolveCopy syncs a copied pack folder from now on, as the same instance
// as its original (asNew false: one shared history) or as a new instance
// (its own id and history, starting from these files). tok is the account
// to use; nil takes --token-file, else the token this computer keeps for
// the instance. A copy from another computer joins through the server
// (init --join), so the account is checked first.
func ResolveCopy(ctx context.Context, opt Options, asNew bool, tok *instance.Token) (instance.Config, error) {
	if err := opt.defaults(); err != nil {
		return instance.Config{}, err
	}
	if opt.userDirsErr != nil {
		return instance.Config{}, opt.userDirsErr
	}
	p := instance.Paths{Pack: opt.PackFolder}
	cfg, err := p.LoadConfig()
	if err != nil {
		return instance.Config{}, err
	}
	kept := opt.UserDirs.TokenFile(cfg)
	keptHere := false
	if tok == nil {
		file := opt.TokenFile
		if file == "" {
			file = kept
			if _, err := os.Stat(kept); errors.Is(err, fs.ErrNotExist) {
				return instance.Config{}, fmt.Errorf("this computer has no token for instance %s; pass --token-file=FILE, or run \"instance-sync setup --force\" to log in", cfg.InstanceID)
			}
			keptHere = true
		}
		t, err := instance.ReadToken(file)
		if err != nil {
			return instance.Config{}, err
		}
		tok = &t
	}
	if !asNew && keptHere {
		// A copy on this computer: the account is known good; only the
		// record of where the instance lives changes.
		lock, err := p.AcquireLock()
		if err != nil {
			return instance.Config{}, err
		}
		defer lock.Release()
		return cfg, recordHome(opt, p)
	}
	join := cfg.InstanceID
	if asNew {
		join = ""
	}
	label := opt.Label
	if label == "" {
		label = cfg.Label
	}
	io := InitOptions{Options: opt, URL: cfg.URL, Token: *tok, Join: join, Force: true}
	io.Label = label
	return Init(ctx, io)
}
