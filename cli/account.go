package cli

import (
	"context"
	"errors"
	"fmt"

	"git.timemachine.center/timemachine/instance-sync/engine"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// hookAccount runs a hook's sync (pull, wrap's pull, push) so that an
// account problem never blocks play: when the server refuses the token
// (the operator rotated the password or disabled the account), the dialogs
// offer to log in again (and the sync runs once more) or to play without
// sync this time; without dialogs the hook warns and exits 0, like
// offline, unless --offline=fail. The explicit commands keep exit 4.
func hookAccount(ctx context.Context, o engine.Options, op string, sync func(engine.Options) error) error {
	err := sync(o)
	if ExitCode(err) != ExitAuth || o.OfflineFail {
		return err
	}
	skip := "playing without sync this time"
	if op == "push" {
		skip = "not pushing this time; your progress is safe on this computer"
	}
	if d, ok := o.UI.(*ui.Dialogs); ok {
		again, lerr := relogin(ctx, o, d, err, op)
		if lerr != nil && !errors.Is(lerr, ui.ErrCancelled) {
			d.Warn("cannot log in again: " + lerr.Error())
		}
		if again {
			return sync(o)
		}
	}
	o.UI.Warn(fmt.Sprintf("%v; %s; run \"instance-sync setup --force\" to log in again", err, skip))
	o.UI.Event(ui.DoneEvent{Action: string(engine.ActionAuthFailed), Message: err.Error()})
	return nil
}

// relogin asks whether to log in again and, if so, for the password; the
// new token is stored for the next runs. again reports whether the sync
// should run again.
func relogin(ctx context.Context, o engine.Options, d *ui.Dialogs, refused error, op string) (again bool, err error) {
	url, user, err := engine.SyncURL(o)
	if err != nil {
		return false, err
	}
	if !d.AskRelogin(ctx, refused.Error(), op) {
		return false, nil
	}
	creds, err := d.Login(ctx, ui.Login{
		URL: url,
		Check: func(ctx context.Context, server, u, pw string) error {
			if u != user {
				return badLogin{fmt.Errorf("this instance is synced by user %s; log in as %s", user, user)}
			}
			return checkLogin(ctx, server, u, pw, o.InsecureHTTP)
		},
	})
	if err != nil {
		return false, err
	}
	if creds.URL != url {
		return false, fmt.Errorf("this instance syncs with %s; run \"instance-sync setup --force\" to move it to %s", url, creds.URL)
	}
	if err := engine.Relogin(o, instance.Token{User: creds.User, Password: creds.Password}); err != nil {
		return false, err
	}
	return true, nil
}
