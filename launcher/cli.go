package launcher

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/internal/flaghint"
)

const usage = `usage: instance-sync hooks install|uninstall|status --launcher=prism|multimc|atlauncher
                          [--global | --instance=PATH] [--mode=hooks|wrap]
                          [--launcher-dir=DIR] [--binary=PATH]
`

// Command runs "instance-sync hooks ARGS..." and returns the process exit code
// (0 ok, 1 error, 2 usage). exe is the absolute path of the running
// instance-sync binary (used when --binary is not given). Output lines all end
// with "\n".
func Command(ctx context.Context, args []string, exe string, stdout, stderr io.Writer) int {
	return command(ctx, args, Options{Binary: exe}, stdout, stderr)
}

// command is Command with the dependencies open for tests.
func command(ctx context.Context, args []string, base Options, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	sub := args[0]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if sub != "install" && sub != "uninstall" && sub != "status" {
		fmt.Fprintf(stderr, "instance-sync: unknown hooks command %q\n", sub)
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("hooks "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var launcher, mode string
	o := base
	fs.StringVar(&launcher, "launcher", "", "")
	fs.BoolVar(&o.Global, "global", false, "")
	fs.StringVar(&o.Instance, "instance", "", "")
	fs.StringVar(&mode, "mode", string(ModeHooks), "")
	fs.StringVar(&o.LauncherDir, "launcher-dir", "", "")
	fs.StringVar(&o.Binary, "binary", base.Binary, "")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "instance-sync: %s: %s (\"instance-sync hooks -h\" shows the usage)\n", fs.Name(), flaghint.Problem(fs, err))
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "instance-sync: unexpected argument %q\n", fs.Arg(0))
		fmt.Fprint(stderr, usage)
		return 2
	}
	o.Launcher, o.Mode = Launcher(launcher), Mode(mode)
	if _, err := o.withDefaults(); err != nil {
		fmt.Fprintf(stderr, "instance-sync: %v\n", err)
		return 2
	}
	if !o.Global && o.Instance == "" {
		o.Global = true
	}

	switch sub {
	case "status":
		st, err := Status(ctx, o)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", st.File, oneLine(st.Summary()))
		return 0
	case "install":
		res, err := Install(ctx, o)
		if err != nil {
			return fail(stderr, err)
		}
		if !res.Changed {
			fmt.Fprintf(stdout, "%s: already %s; nothing changed\n", res.File, oneLine(res.State.Summary()))
			report(stdout, res)
			return 0
		}
		fmt.Fprintf(stdout, "%s: %s\n", res.File, oneLine(res.State.Summary()))
		report(stdout, res)
		return 0
	default:
		res, err := Uninstall(ctx, o)
		if err != nil {
			return fail(stderr, err)
		}
		if !res.Changed {
			fmt.Fprintf(stdout, "%s: instance-sync is not installed; nothing changed\n", res.File)
			return 0
		}
		fmt.Fprintf(stdout, "%s: instance-sync removed; the file is now: %s\n", res.File, oneLine(res.State.Summary()))
		report(stdout, res)
		return 0
	}
}

func report(w io.Writer, res Result) {
	if res.Backup != "" {
		fmt.Fprintf(w, "backup of the previous file: %s\n", res.Backup)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(w, oneLine(n))
	}
}

func fail(w io.Writer, err error) int {
	fmt.Fprintf(w, "instance-sync: %s\n", oneLine(err.Error()))
	return 1
}

// oneLine keeps launcher logs readable: a command value may hold a newline.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
