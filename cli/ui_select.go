package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/term"

	"git.timemachine.center/timemachine/instance-sync/ui"
)

// dialogCommands may show dialogs: the hooks, which run with no terminal
// from a launcher, and setup. The others are typed at a terminal or run
// by scripts, where a window popping up would be a surprise.
var dialogCommands = map[string]bool{"pull": true, "push": true, "wrap": true, "setup": true}

// uiFacts gathers what ui.Choose decides on from the running process.
func (c *command) uiFacts(env Env) ui.Facts {
	human := env.Stdout
	if c.json {
		human = env.Stderr
	}
	return ui.Facts{
		GOOS:          runtime.GOOS,
		Getenv:        env.Getenv,
		HumanTerminal: isTerminal(human),
		LookPath:      exec.LookPath,
		// Checked last by Choose, and only on Linux and BSD with a helper
		// installed: a local socket connect, or up to a second for a
		// forwarded display.
		DisplayReachable: func() bool { return ui.DisplayReachable(env.Getenv) },
		NoGUI:            c.noGUI || !dialogCommands[c.cmd],
		JSON:             c.json,
	}
}

// isTerminal reports whether w is a terminal; anything that is not an
// *os.File (a test's buffer) is not.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newUI picks and builds the UI for this command.
func (c *command) newUI(env Env) (ui.UI, ui.Pick) {
	p := ui.Choose(c.uiFacts(env))
	if env.Getenv("INSTANCE_SYNC_DEBUG_UI") != "" {
		env.Stderr.Write([]byte("instance-sync: " + p.String() + "\n"))
	}
	return ui.New(p, ui.Setup{Stdout: env.Stdout, Stderr: env.Stderr}), p
}

// uiContext returns ctx cancelled (with ui.ErrCancelled as its cause) when
// the player cancels a progress window: restic gets an interrupt, then is
// killed after its grace period, and the command exits 3.
func uiContext(ctx context.Context, u ui.UI) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	ch := u.Cancelled()
	if ch != nil {
		go func() {
			select {
			case <-ch:
				cancel(ui.ErrCancelled)
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() { cancel(nil) }
}

// cancelled reports whether err is the player's own choice to stop.
func cancelled(err error) bool {
	return errors.Is(err, ui.ErrCancelled)
}
