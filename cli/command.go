package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"git.timemachine.center/timemachine/instance-sync/engine"
	"git.timemachine.center/timemachine/instance-sync/internal/flaghint"
)

// flagGroup names flags several commands share; each command registers
// only the groups it uses, so a flag it would ignore is a usage error.
type flagGroup uint8

const (
	withPack     flagGroup = 1 << iota // --pack-folder
	withToken                          // --token-file
	withInsecure                       // --insecure-http
	withLabel                          // --instance-label
	withRestic                         // --restic-binary, --no-download
	withJSON                           // --json
	withGUI                            // --no-gui, -g

	// withSession is what a command that syncs or reads the cloud takes.
	withSession = withPack | withToken | withInsecure | withLabel | withRestic
)

// common holds the shared flags' values.
type common struct {
	cmd                                  string // the command, for choosing the UI
	pack, tokenFile, resticBinary, label string
	noDownload, noGUI, json, insecure    bool
}

// command is one command's flags: the shared groups it uses plus its own
// (registered on fs before parse).
type command struct {
	common
	env  Env
	args string // what follows [flags] in the usage line, e.g. "[-- CMD ARGS...]"
	fs   *flag.FlagSet
}

// newCommand starts a command line: name as the user types it ("pull",
// "hooks install"), args as its usage line shows them, and the shared
// flag groups it takes.
func newCommand(env Env, name, args string, groups flagGroup) *command {
	c := &command{env: env, args: args}
	c.cmd = name
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if groups&withPack != 0 {
		fs.StringVar(&c.pack, "pack-folder", "", "`PATH` the instance's game folder (default $INST_MC_DIR, then the current folder)")
	}
	if groups&withToken != 0 {
		fs.StringVar(&c.tokenFile, "token-file", "", "`FILE` the file holding USER:PASSWORD (default: the token init kept for this instance in your config folder)")
	}
	if groups&withInsecure != 0 {
		fs.BoolVar(&c.insecure, "insecure-http", false, "allow plain http to a server that is not this machine")
	}
	if groups&withLabel != 0 {
		fs.StringVar(&c.label, "instance-label", "", "`NAME` the name shown for this instance (default $INST_NAME, $INST_ID, or the id)")
	}
	if groups&withRestic != 0 {
		fs.StringVar(&c.resticBinary, "restic-binary", "", "`PATH` the restic executable to use")
		fs.BoolVar(&c.noDownload, "no-download", false, "never download restic")
	}
	if groups&withGUI != 0 {
		fs.BoolVar(&c.noGUI, "no-gui", false, "no dialogs")
		fs.BoolVar(&c.noGUI, "g", false, "short for --no-gui")
	}
	if groups&withJSON != 0 {
		fs.BoolVar(&c.json, "json", false, "JSON events on stdout, one per line")
	}
	c.fs = fs
	return c
}

// parse parses the command's flags. A mistake is one line with a hint (the
// flag package would print every flag after it); -h prints the usage line
// and the flags, and returns flag.ErrHelp (exit 0).
func (c *command) parse(argv []string) error {
	fs := c.fs
	fs.Usage = func() {}
	fs.SetOutput(io.Discard) // the flag package prints its error itself
	err := fs.Parse(argv)
	fs.SetOutput(c.env.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		c.printUsage(c.env.Stderr)
		return err
	}
	if err != nil {
		return usagef("%s: %s (\"instance-sync %s -h\" lists the flags)", fs.Name(), flaghint.Problem(fs, err), fs.Name())
	}
	return nil
}

// setup parses argv, applies the command's own rules (check, may be nil)
// and returns the engine options.
func (c *command) setup(argv []string, check func() error) (engine.Options, error) {
	if err := c.parse(argv); err != nil {
		return engine.Options{}, err
	}
	if check != nil {
		if err := check(); err != nil {
			return engine.Options{}, err
		}
	}
	return c.options()
}

// printUsage writes "usage: instance-sync NAME [flags] ARGS" and the flags
// in the README's style (--name=VALUE).
func (c *command) printUsage(w io.Writer) {
	line := "usage: instance-sync " + c.fs.Name()
	n := 0
	c.fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		line += " [flags]"
	}
	if c.args != "" {
		line += " " + c.args
	}
	fmt.Fprintln(w, line)
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	c.fs.VisitAll(func(f *flag.Flag) {
		value, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		switch value {
		case "":
		case "string":
			name += "=VALUE"
		default:
			name += "=" + value
		}
		usage = strings.TrimPrefix(usage, value+" ")
		if f.DefValue != "" && f.DefValue != "false" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
}

// options turns the shared flags into engine options.
func (c *command) options() (engine.Options, error) {
	env := c.env
	pack := c.pack
	if pack != "" && env.Getenv("INST_MC_DIR") == "" {
		// Typed by hand, not by the launcher's hook: a folder that is not
		// there is a typo, not an instance that has not opted in.
		if _, err := os.Stat(pack); errors.Is(err, fs.ErrNotExist) {
			return engine.Options{}, usagef("--pack-folder %s does not exist; check the path (the instance's minecraft folder)", pack)
		}
	}
	if pack == "" {
		pack = env.Getenv("INST_MC_DIR")
	}
	if pack == "" {
		wd, err := os.Getwd()
		if err != nil {
			return engine.Options{}, err
		}
		pack = wd
	}
	u, _ := c.newUI(env)
	stall, timeout, err := resticBounds(c.fs.Name(), env.Getenv("INSTANCE_SYNC_RESTIC_STALL"))
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{
		ResticStall:   stall,
		ResticTimeout: timeout,
		PackFolder:    pack,
		TokenFile:     c.tokenFile,
		ResticBinary:  c.resticBinary,
		NoDownload:    c.noDownload,
		Label:         c.label,
		InsecureHTTP:  c.insecure,
		UI:            u,
		Stderr:        env.Stderr,
		Getenv:        env.Getenv,
		// The name recorded with snapshots; the OS hostname by default.
		Hostname:      env.Getenv("INSTANCE_SYNC_HOSTNAME"),
		StartWatcher:  c.watcher(env),
		NoWatcher:     env.Getenv("INSTANCE_SYNC_WATCH") == "0",
		ResticRestore: env.Getenv("INSTANCE_SYNC_DIRECT") == "0",
		Fault:         killAt(env.Getenv("INSTANCE_SYNC_TEST_KILL_AT")),
	}, nil
}

// noArgs is a check for commands that take no arguments after the flags.
func (c *command) noArgs() error {
	if c.fs.NArg() > 0 {
		return usagef("%s takes no arguments, got %q", c.fs.Name(), c.fs.Arg(0))
	}
	return nil
}

// oneLine keeps a message on one line (a launcher's command value may hold
// a newline).
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// pullStall bounds how long the pre-launch pull waits for a server that
// stopped answering mid-transfer before the game starts with the files as
// they are (restic itself would retry for 15 minutes). A restic run
// that moves no byte for this long is stopped.
const pullStall = 45 * time.Second

// resticBounds are how long a restic backup or restore may show no
// progress (stall) and how long any other restic run may take (timeout;
// they normally take a second or two). stall is env
// (INSTANCE_SYNC_RESTIC_STALL, e.g. "5m" on a very slow link) when set,
// else pullStall for the pre-launch hooks (pull, wrap); their timeout is
// pullStall. Zero leaves the engine's defaults.
func resticBounds(cmd, env string) (stall, timeout time.Duration, err error) {
	if cmd == "pull" || cmd == "wrap" {
		stall, timeout = pullStall, pullStall
	}
	if env != "" {
		d, err := time.ParseDuration(env)
		if err != nil || d <= 0 {
			return 0, 0, usagef("INSTANCE_SYNC_RESTIC_STALL=%q is not a duration like 90s or 5m", env)
		}
		stall = d
	}
	return stall, timeout, nil
}
