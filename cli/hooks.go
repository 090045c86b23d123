package cli

import (
	"context"
	"fmt"
	"io"

	"git.timemachine.center/timemachine/instance-sync/launcher"
)

const hooksUsage = `usage: instance-sync hooks install|uninstall|status --launcher=prism|multimc|atlauncher
                          [--global | --instance=PATH] [--mode=hooks|wrap]
                          [--launcher-dir=DIR] [--binary=PATH]
`

// cmdHooks wires instance-sync into Prism Launcher, MultiMC or ATLauncher
// ("instance-sync hooks install|uninstall|status"); the editing itself is
// package launcher's.
func cmdHooks(ctx context.Context, env Env, args []string) error {
	return hooks(ctx, env, args, launcher.Options{Binary: env.Exe})
}

// hooks is cmdHooks with the launcher's dependencies open for tests.
func hooks(ctx context.Context, env Env, args []string, base launcher.Options) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, hooksUsage)
		return usageError{} // the usage says it all
	}
	sub := args[0]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprint(env.Stdout, hooksUsage)
		return nil
	}
	if sub != "install" && sub != "uninstall" && sub != "status" {
		fmt.Fprintf(env.Stderr, "instance-sync: unknown hooks command %q\n", sub)
		fmt.Fprint(env.Stderr, hooksUsage)
		return usageError{}
	}
	c := newCommand(env, "hooks "+sub, "", 0)
	o := base
	var name, mode string
	c.fs.StringVar(&name, "launcher", "", "`prism|multimc|atlauncher` the launcher to wire in")
	c.fs.BoolVar(&o.Global, "global", false, "the launcher-wide settings (the default without --instance)")
	c.fs.StringVar(&o.Instance, "instance", "", "`PATH` one instance: its folder, its game folder or its name")
	c.fs.StringVar(&mode, "mode", string(launcher.ModeHooks), "`hooks|wrap` pre-launch and post-exit commands, or the wrapper command")
	c.fs.StringVar(&o.LauncherDir, "launcher-dir", "", "`DIR` the launcher's data folder (found automatically)")
	c.fs.StringVar(&o.Binary, "binary", base.Binary, "`PATH` the absolute path the launcher should run instance-sync by")
	if err := c.parse(args[1:]); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	o.Launcher, o.Mode = launcher.Launcher(name), launcher.Mode(mode)
	if err := o.Check(); err != nil {
		return usagef("%v", err)
	}
	if !o.Global && o.Instance == "" {
		o.Global = true
	}
	switch sub {
	case "status":
		st, err := launcher.Status(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s: %s\n", st.File, oneLine(st.Summary()))
	case "install":
		res, err := launcher.Install(ctx, o)
		if err != nil {
			return err
		}
		if res.Changed {
			fmt.Fprintf(env.Stdout, "%s: %s\n", res.File, oneLine(res.State.Summary()))
		} else {
			fmt.Fprintf(env.Stdout, "%s: already %s; nothing changed\n", res.File, oneLine(res.State.Summary()))
		}
		hooksReport(env.Stdout, res)
	default:
		res, err := launcher.Uninstall(ctx, o)
		if err != nil {
			return err
		}
		if !res.Changed {
			fmt.Fprintf(env.Stdout, "%s: instance-sync is not installed; nothing changed\n", res.File)
			hooksReport(env.Stdout, res)
			return nil
		}
		fmt.Fprintf(env.Stdout, "%s: instance-sync removed; the file is now: %s\n", res.File, oneLine(res.State.Summary()))
		hooksReport(env.Stdout, res)
	}
	return nil
}

func hooksReport(w io.Writer, res launcher.Result) {
	if res.Backup != "" {
		fmt.Fprintf(w, "backup of the previous file: %s\n", res.Backup)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(w, oneLine(n))
	}
}
