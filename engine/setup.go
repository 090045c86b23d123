package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
)

// InitOptions opt an instance in.
type InitOptions struct {
	Options
	URL   string
	Token instance.Token
	Join  string // existing instance id to join; "" mints a new one
	Force bool   // replace an existing sync.json
}

// ErrAlreadyInitialised means sync.json exists and Force is off.
var ErrAlreadyInitialised = errors.New("already set up")

// Init checks the credentials against the server, then writes sync.json
// (in the pack folder) and the token (in the user's config folder,
// UserDirs). Nothing is written when the check fails.
func Init(ctx context.Context, o InitOptions) (instance.Config, error) {
	if err := o.defaults(); err != nil {
		return instance.Config{}, err
	}
	if o.userDirsErr != nil {
		return instance.Config{}, o.userDirsErr
	}
	p := instance.Paths{Pack: o.PackFolder}
	if fi, err := os.Stat(o.PackFolder); err != nil || !fi.IsDir() {
		return instance.Config{}, fmt.Errorf("pack folder %s does not exist; pass the instance's game folder with --pack-folder", o.PackFolder)
	}
	if old, err := os.ReadFile(p.Config()); err == nil && !o.Force {
		id := "?"
		if c, err := instance.ParseConfig(old); err == nil {
			id = c.InstanceID
		}
		return instance.Config{}, fmt.Errorf("%w: %s exists (instance %s); pass --force to replace it", ErrAlreadyInitialised, p.Config(), id)
	}
	u, err := remote.CheckURL(o.URL, o.InsecureHTTP)
	if err != nil {
		return instance.Config{}, err
	}
	url := strings.TrimRight(u.String(), "/")
	id := o.Join
	if id == "" {
		id = ulid.MustNew(ulid.Timestamp(time.Now()), rand.Reader).String()
	} else if !instance.ValidInstanceID(id) {
		return instance.Config{}, fmt.Errorf("--join=%s is not an instance id; \"instance-sync status\" on the other computer prints it", id)
	}
	srv := remote.Server{URL: url, User: o.Token.User, Password: o.Token.Password, Timeout: o.HTTPTimeout}
	if err := srv.Check(ctx, id); err != nil {
		return instance.Config{}, err
	}
	if o.Join != "" {
		l, err := srv.ListSnapshots(ctx, id)
		if err != nil {
			return instance.Config{}, err
		}
		if !l.Exists {
			return instance.Config{}, fmt.Errorf("instance %s has no cloud repository for user %s yet; push from the other computer first, or check the id with \"instance-sync status\" there", id, o.Token.User)
		}
	}
	// A state recorded for another instance describes another repository.
	if old, err := p.LoadConfig(); err == nil && old.InstanceID != id {
		for _, f := range []string{p.State(), p.Manifest()} {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return instance.Config{}, err
			}
		}
	}
	cfg := instance.Config{Version: instance.ConfigVersion, URL: url, InstanceID: id, User: o.Token.User, Label: o.Label}
	if err := os.MkdirAll(p.Dir(), 0o700); err != nil {
		return instance.Config{}, err
	}
	// The token goes to the user's config folder, never into the pack
	// folder, which a launcher's export zips whole.
	if err := instance.WriteToken(o.UserDirs.TokenFile(cfg), o.Token); err != nil {
		return instance.Config{}, err
	}
	for _, f := range []string{p.LegacyToken(), p.LegacyMasterKey()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return instance.Config{}, err
		}
	}
	if err := p.SaveConfig(cfg); err != nil {
		return instance.Config{}, err
	}
	_ = os.Remove(p.Disabled())
	// The state records where the instance lives, so a copy of the folder
	// is recognised. A damaged state is left for the next sync to report.
	if err := recordHome(o.Options, p); err != nil && !errors.As(err, new(*instance.FileError)) {
		return instance.Config{}, err
	}
	// A launcher export of the instance leaves the sync state out.
	if file, entry, ok := p.PackIgnore(); ok {
		if _, err := instance.AddPackIgnore(file, entry); err != nil {
			o.UI.Warn(fmt.Sprintf("%s: cannot list %s there (%v); an export of this instance would carry its sync state", file, entry, err))
		}
	}
	return cfg, nil
}

// Disable pauses sync: sync.json becomes sync.json.disabled, so the hooks
// do nothing, and the instance id is kept for Enable.
func Disable(opt Options) error {
	if opt.PackFolder == "" {
		return errors.New("no pack folder: pass --pack-folder")
	}
	p := instance.Paths{Pack: opt.PackFolder}
	return switchConfig(p.Config(), p.Disabled(),
		fmt.Errorf("%s: sync is not set up for this instance; nothing to disable", p.Config()), nil)
}

// Enable resumes sync with the same instance id, so history continues in
// the same repository.
func Enable(opt Options) error {
	if opt.PackFolder == "" {
		return errors.New("no pack folder: pass --pack-folder")
	}
	p := instance.Paths{Pack: opt.PackFolder}
	return switchConfig(p.Disabled(), p.Config(),
		fmt.Errorf("%s: there is no paused sync to enable; run \"instance-sync setup\" to set it up", p.Disabled()),
		func(data []byte) error {
			if _, err := instance.ParseConfig(data); err != nil {
				return &instance.FileError{Path: p.Disabled(), Problem: err.Error(), Fix: "delete it and run \"instance-sync setup\""}
			}
			return nil
		})
}

// switchConfig renames from to to (sync.json and sync.json.disabled, one
// way or the other), once check, when not nil, accepts from's content.
// With from gone it is done already when to is there; else it returns
// missing.
func switchConfig(from, to string, missing error, check func(data []byte) error) error {
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(to); err == nil {
			return nil
		}
		return missing
	}
	if check != nil {
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		if err := check(data); err != nil {
			return err
		}
	}
	return os.Rename(from, to)
}
