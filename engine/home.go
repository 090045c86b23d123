package engine

import (
	"context"
	"errors"
	"fmt"
	"os"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// A launcher's "copy instance", an exported zip unpacked elsewhere or a
// folder copied by hand carries .cloud-sync/ with it: the same instance
// id and state. Synced as is, the copy would push into the original's
// history, and the original would fast-forward to the copy's progress at
// its next launch. So the state records where the instance lives
// (instance.Home), and a folder whose record names another place is not
// synced as the original until the player says how.

// NotOriginalError is a pack folder that is a copy of an instance living
// elsewhere: on this computer at Original, or (Original "") on another
// computer, this one having no token for it. The hooks sync nothing and
// exit 0; other commands fail with it.
type NotOriginalError struct {
	InstanceID string
	Original   string
}

func (e *NotOriginalError) Error() string {
	if e.Original != "" {
		return fmt.Sprintf("this folder is a copy of instance %s, whose original is %s, so it is not synced as the original; "+
			`run "instance-sync copy --same" to sync it as the same instance, "instance-sync copy --new" to make it a new instance, or "instance-sync disable" to leave it unsynced`,
			e.InstanceID, e.Original)
	}
	return fmt.Sprintf("this folder comes from another computer and this one has no token for its instance %s, so it is not synced; "+
		`run "instance-sync setup --force" to log in and sync it (as the same instance or a new one), or "instance-sync disable" to leave it unsynced`,
		e.InstanceID)
}

// question is the dialog's text.
func (e *NotOriginalError) question() string {
	if e.Original != "" {
		return fmt.Sprintf("This instance is a copy of one that syncs from\n%s\n\nSync this copy as the same instance (both share one history), as a new instance (its own history), or not at all?", e.Original)
	}
	return "This instance was copied from another computer, and this computer has no login for it.\n\nSync this copy as the same instance (log in to continue its history), as a new instance (log in; its own history), or not at all?"
}

// checkHome compares where the state says the instance lives with where
// it is now. The same place, a folder that was moved (nothing holds the
// instance at the recorded path any more) and a state from before homes
// were recorded all go on, and the record is brought up to date.
func (s *session) checkHome() error {
	computer, err := s.opt.UserDirs.ComputerID()
	if err != nil {
		return err
	}
	here := instance.Home{Path: s.opt.PackFolder, Computer: computer}
	h := s.state.Home
	switch {
	case h != nil && *h == here:
		return nil
	case h != nil && h.Computer == computer && sameFolder(h.Path, here.Path):
		// The same folder by another name (a link, another letter case
		// on Windows or macOS): not a copy, and the record stays.
		return nil
	case h != nil && h.Computer == computer && holdsInstance(h.Path, s.cfg.InstanceID):
		return &NotOriginalError{InstanceID: s.cfg.InstanceID, Original: h.Path}
	case h != nil && h.Computer != computer && !s.tokenHere():
		return &NotOriginalError{InstanceID: s.cfg.InstanceID}
	}
	s.state.Home = &here
	if err := s.save(); err != nil {
		return err
	}
	if h != nil && h.Computer == computer {
		s.opt.UI.Info(fmt.Sprintf("this instance moved here from %s; it syncs from here now", h.Path))
	}
	return nil
}

// tokenHere reports whether this computer has a token for the instance.
func (s *session) tokenHere() bool {
	if s.opt.TokenFile != "" {
		return true
	}
	for _, f := range []string{s.opt.UserDirs.TokenFile(s.cfg), s.paths.LegacyToken()} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// sameFolder reports whether a and b name one folder.
func sameFolder(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// holdsInstance reports whether pack is opted in (or paused) as instance id.
func holdsInstance(pack, id string) bool {
	p := instance.Paths{Pack: pack}
	for _, f := range []string{p.Config(), p.Disabled()} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if c, err := instance.ParseConfig(data); err == nil && c.InstanceID == id {
			return true
		}
	}
	return false
}

// recordHome writes where the instance lives into its state (init, and a
// copy adopted as the same instance).
func recordHome(opt Options, p instance.Paths) error {
	computer, err := opt.UserDirs.ComputerID()
	if err != nil {
		return err
	}
	st, err := p.LoadState()
	if err != nil {
		return err
	}
	st.Home = &instance.Home{Path: opt.PackFolder, Computer: computer}
	return p.SaveState(&st)
}

// loginFor asks for the account of the instance's server (a copy from
// another computer).
func loginFor(ctx context.Context, opt Options) (instance.Token, error) {
	p := instance.Paths{Pack: opt.PackFolder}
	cfg, err := p.LoadConfig()
	if err != nil {
		return instance.Token{}, err
	}
	creds, err := opt.UI.Login(ctx, ui.Login{URL: cfg.URL, User: cfg.User,
		Check: func(ctx context.Context, url, user, pw string) error {
			srv := remote.Server{URL: url, User: user, Password: pw, Timeout: opt.HTTPTimeout}
			if err := srv.Check(ctx, cfg.InstanceID); errors.Is(err, remote.ErrAuth) {
				return fmt.Errorf("%w: %v", ui.ErrBadCredentials, err)
			} else if err != nil {
				return err
			}
			return nil
		}})
	if err != nil {
		return instance.Token{}, err
	}
	return instance.Token{User: creds.User, Password: creds.Password}, nil
}
