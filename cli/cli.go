// Package cli is the instance-sync command line: it parses flags, picks the
// UI, calls the engine and maps its errors to the documented exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/engine"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/resticbin"
	"git.timemachine.center/timemachine/instance-sync/ui"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// Exit codes, stable and documented in the README.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitConflict = 3
	ExitAuth     = 4
	ExitLocked   = 5
	ExitNoRestic = 6
)

// Protocol is the contract that programs driving the binary rely on: the
// --json events, the exit codes above and the flags they pass. "version"
// prints it on its second line ("protocol: 1"); it goes up only when that
// contract changes incompatibly, and new fields or commands do not change
// it. The Python package (python/cloud_sync) refuses a binary without it.
const Protocol = 1

// Env is what the command line runs in; tests build their own.
type Env struct {
	Args    []string // without the program name
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string
	Version string // stamped build version
	// Exe is the running binary's path (for hooks install and the change
	// watcher); Argv0 the name it was started as.
	Exe   string
	Argv0 string
	// IsTerminal reports whether stdin is a terminal (setup prompts only then).
	IsTerminal func() bool
}

// ExitCode maps an engine error to the documented exit code.
func ExitCode(err error) int {
	var ce *engine.ConflictError
	var ue usageError
	var xe exitCodeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ce), errors.Is(err, ui.ErrCancelled):
		return ExitConflict
	case errors.Is(err, remote.ErrAuth), errors.Is(err, restic.ErrWrongPassword):
		return ExitAuth
	case errors.Is(err, instance.ErrLockHeld):
		return ExitLocked
	case errors.Is(err, resticbin.ErrMissing):
		return ExitNoRestic
	}
	return ExitError
}

// usageError is a usage mistake (exit 2); one without a message has
// printed the usage itself.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

const usageText = `usage: instance-sync COMMAND [flags]

commands:
  pull [flags] [-- CMD ARGS...]  bring newer progress from the cloud (pre-launch hook); runs CMD first
  push [flags]                   upload this computer's progress (post-exit hook)
  wrap [flags] -- CMD ARGS...    pull, run CMD (the game), push even if it crashed
  setup [--url=URL]              log in and opt this instance in (interactive)
  init --url=URL --token-file=FILE [--join=ID] [--force]   opt in from a script (the file holds USER:PASSWORD)
  disable | enable               pause or resume sync, keeping the instance id
  copy --same | --new            sync a copied instance folder as its original's instance, or as a new one
  status [--json]                opted in? last sync, pending changes, cloud heads, scope
  history [--json]               snapshots: time, host, kind, size, heads
  restore SNAPSHOT               bring an older snapshot back (safety snapshot first)
  hooks install|uninstall|status wire instance-sync into Prism, MultiMC or ATLauncher
  version                        this build and the restic it uses

common flags: --pack-folder=PATH (default $INST_MC_DIR, then the current folder);
"instance-sync COMMAND -h" lists a command's flags
exit codes: 0 ok, 1 error, 2 usage, 3 conflict or cancelled, 4 authentication, 5 locked, 6 no restic
`

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(env.Args) == 0 {
		fmt.Fprint(env.Stderr, usageText)
		return ExitUsage
	}
	name, args := env.Args[0], env.Args[1:]
	var err error
	switch name {
	case "pull":
		err = cmdPull(ctx, env, args)
	case "push":
		err = cmdPush(ctx, env, args)
	case "wrap":
		var code int
		code, err = cmdWrap(ctx, env, args)
		if err == nil {
			return code
		}
	case "init":
		err = cmdInit(ctx, env, args)
	case "setup":
		err = cmdSetup(ctx, env, args)
	case "copy":
		err = cmdCopy(ctx, env, args)
	case "enable", "disable":
		err = cmdEnable(env, name, args)
	case "status":
		err = cmdStatus(ctx, env, args)
	case "history":
		err = cmdHistory(ctx, env, args)
	case "restore":
		err = cmdRestore(ctx, env, args)
	case "version", "--version", "-version":
		err = cmdVersion(ctx, env, args)
	case "hooks":
		err = cmdHooks(ctx, env, args)
	case "watch":
		err = cmdWatch(env, args)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usageText)
		return ExitOK
	default:
		err = usagef("unknown command %q; run \"instance-sync help\"", name)
	}
	return report(env, err)
}

// report prints err as one line and returns its exit code.
func report(env Env, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if msg := oneLine(strings.TrimSpace(err.Error())); msg != "" {
		fmt.Fprintf(env.Stderr, "instance-sync: %s\n", msg)
	}
	return ExitCode(err)
}

// killAt is fault injection for tests: with INSTANCE_SYNC_TEST_KILL_AT set
// to a restore's point ("staged", "restored", "moved:2"), the process
// kills itself there as a launcher or a power cut would, without any
// cleanup.
func killAt(point string) func(string) {
	if point == "" {
		return nil
	}
	return func(at string) {
		if at == point {
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Kill()
				select {} // until the signal lands
			}
		}
	}
}

// watcher starts the change watcher that lets the push after the game
// skip its walk (Linux; off with INSTANCE_SYNC_WATCH=0).
func (c *command) watcher(env Env) func(string) error {
	if !watch.Supported || env.Exe == "" || env.Getenv("INSTANCE_SYNC_WATCH") == "0" {
		return nil
	}
	argv0 := env.Argv0
	if argv0 == "" {
		argv0 = env.Exe
	}
	return func(pack string) error { return watch.Start(env.Exe, argv0, pack) }
}

// fail reports err through the UI too (a JSON error event; a dialog when
// the dialog UI runs a hook), then returns it.
func fail(o engine.Options, err error) error {
	if err != nil && o.UI != nil {
		o.UI.Event(ui.ErrorEvent{Message: err.Error(), ExitCode: ExitCode(err), Cancelled: cancelled(err)})
	}
	return err
}
