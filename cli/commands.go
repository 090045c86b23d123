package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oklog/ulid/v2"

	"git.timemachine.center/timemachine/instance-sync/engine"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/resticbin"
	"git.timemachine.center/timemachine/instance-sync/ui"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// preferFlag is --prefer: "local" or "cloud" for every world that
// collides, "cloud:NAME" or "local:NAME" for one (repeatable).
type preferFlag struct {
	all    string
	worlds map[string]string
	err    error // the first bad value, reported as a usage error
}

func (p *preferFlag) String() string { return p.all }

func (p *preferFlag) Set(v string) error {
	side, world, one := strings.Cut(v, ":")
	switch {
	case side != "local" && side != "cloud", one && world == "":
		if p.err == nil {
			p.err = usagef("--prefer must be local, cloud, local:NAME or cloud:NAME (a world), not %q", v)
		}
	case !one && p.all != "" && p.all != side:
		if p.err == nil {
			p.err = usagef("--prefer=%s and --prefer=%s contradict each other; name a world for one of them (--prefer=%s:NAME)", p.all, side, side)
		}
	case !one:
		p.all = side
	default:
		if p.worlds == nil {
			p.worlds = map[string]string{}
		}
		p.worlds[world] = side
	}
	return nil
}

func cmdPull(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "pull", "[-- CMD ARGS...]", withSession|withJSON|withGUI)
	var prefer preferFlag
	c.fs.Var(&prefer, "prefer", "`local|cloud` resolve a conflict without asking; cloud:NAME or local:NAME for one world (repeatable)")
	snapshot := c.fs.String("snapshot", "", "`ID` with --prefer=cloud: which cloud version (id or prefix) when there are several")
	offline := offlineFlag(c, "when the server cannot be reached: warn (and let the game start) or fail")
	o, err := c.setup(args, func() error {
		if prefer.err != nil {
			return prefer.err
		}
		if *snapshot != "" && prefer.all != "cloud" {
			return usagef("--snapshot goes with --prefer=cloud")
		}
		return offline.check()
	})
	if err != nil {
		return err
	}
	o.Prefer, o.PreferWorlds, o.Snapshot, o.OfflineFail = prefer.all, prefer.worlds, *snapshot, offline.fail()
	if rest := c.fs.Args(); len(rest) > 0 {
		// pull -- CMD: CMD first (e.g. packwiz-installer-bootstrap), so pack
		// updates land before the player's data is restored.
		if code := runChild(ctx, env, rest, o.PackFolder); code != 0 {
			return exitCodeError{code: code, msg: fmt.Sprintf("%s exited with status %d; not pulling", rest[0], code)}
		}
	}
	return fail(o, hook(ctx, o, "pull"))
}

func cmdPush(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "push", "", withSession|withJSON|withGUI)
	offline := offlineFlag(c, "when the server refuses the login: warn (exit 0, progress stays on this computer) or fail (exit 4)")
	o, err := c.setup(args, func() error {
		if err := c.noArgs(); err != nil {
			return err
		}
		return offline.check()
	})
	if err != nil {
		return err
	}
	o.OfflineFail = offline.fail()
	return fail(o, hook(ctx, o, "push"))
}

// hook runs a hook's pull or push: the UI's cancel button stops it, and a
// refused login follows hookAccount.
func hook(ctx context.Context, o engine.Options, op string) error {
	ctx, stop := uiContext(ctx, o.UI)
	defer stop()
	sync := engine.Pull
	if op == "push" {
		sync = engine.Push
	}
	return hookAccount(ctx, o, op, func(o engine.Options) error {
		_, err := sync(ctx, o)
		return err
	})
}

// cmdWatch runs the change watcher a pull starts in the background (see
// package watch); not a command for players. It says why it stopped.
func cmdWatch(env Env, args []string) error {
	c := newCommand(env, "watch", "", withPack)
	o, err := c.setup(args, c.noArgs)
	if err != nil {
		return err
	}
	err = engine.Watch(o)
	switch {
	case err == nil:
		fmt.Fprintln(env.Stderr, "instance-sync watch: done")
	case errors.Is(err, watch.ErrChanged):
		fmt.Fprintln(env.Stderr, "instance-sync watch:", err)
	default:
		return err
	}
	return nil
}

// cmdWrap pulls, runs the game, and pushes whatever the game's exit code:
// a crash is exactly when progress is most at risk.
func cmdWrap(ctx context.Context, env Env, args []string) (int, error) {
	c := newCommand(env, "wrap", "-- COMMAND [ARGS...]", withSession|withJSON|withGUI)
	offline := offlineFlag(c, "when the server cannot be reached: warn or fail")
	o, err := c.setup(args, func() error {
		if c.fs.NArg() == 0 {
			return usagef("wrap needs a command: instance-sync wrap -- COMMAND [ARGS...]")
		}
		return offline.check()
	})
	if err != nil {
		return 0, err
	}
	rest := c.fs.Args()
	o.OfflineFail = offline.fail()
	if err := hook(ctx, o, "pull"); err != nil {
		return 0, fail(o, err)
	}
	code := runChild(ctx, env, rest, o.PackFolder)
	if code != 0 {
		fmt.Fprintf(env.Stderr, "instance-sync: %s exited with status %d; pushing anyway\n", rest[0], code)
	}
	if env.Getenv("INSTANCE_SYNC_RESTIC_STALL") == "" {
		// The game is over: the push may wait for a slow server as long as
		// a push hook would.
		o.ResticStall, o.ResticTimeout = 0, 0
	}
	// The push runs even after an interrupt: its progress is what is at risk.
	if perr := hook(context.WithoutCancel(ctx), o, "push"); perr != nil {
		perrCode := report(env, fail(o, perr))
		if code == 0 {
			return perrCode, nil
		}
	}
	return code, nil
}

// exitCodeError carries a child's exit code out as ours.
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

// runChild runs argv with our stdin, stdout and stderr, forwarding
// interrupt and terminate signals, and returns its exit code.
func runChild(ctx context.Context, env Env, argv []string, dir string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, env.Stdout, env.Stderr
	if cmd.Stdin == nil {
		cmd.Stdin = os.Stdin
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		cmd.Dir = dir
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(env.Stderr, "instance-sync: cannot start %s: %v\n", argv[0], err)
		return 127
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwardedSignals...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	signal.Stop(sigs)
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return code
		}
		return 128 + 15 // killed by a signal
	}
	if err != nil {
		return 1
	}
	return 0
}

func cmdInit(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "init", "", withPack|withToken|withInsecure|withLabel)
	url := c.fs.String("url", "", "server `URL`, e.g. https://cloud.example.org")
	token := c.fs.String("token", "", "`USER:PASSWORD` the account (prefer --token-file or $INSTANCE_SYNC_TOKEN: argv is visible to other users)")
	join := c.fs.String("join", "", "`ID` the existing instance to join (as \"instance-sync status\" on the other computer)")
	force := c.fs.Bool("force", false, "replace an existing sync.json")
	if err := c.parse(args); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	if *url == "" {
		return usagef("init needs --url=URL")
	}
	if _, err := remote.CheckURL(*url, c.insecure); err != nil {
		return usagef("%v", err)
	}
	if *join != "" {
		if _, err := ulid.ParseStrict(*join); err != nil {
			return usagef("--join=%q is not an instance id (26 letters and digits, as \"instance-sync status\" prints it on the other computer)", *join)
		}
	}
	raw := *token
	if raw == "" {
		raw = env.Getenv("INSTANCE_SYNC_TOKEN")
	}
	if raw == "" && c.tokenFile != "" {
		data, err := os.ReadFile(c.tokenFile)
		if errors.Is(err, iofs.ErrNotExist) {
			return usagef("--token-file %s does not exist; pass the file with USER:PASSWORD you were given", c.tokenFile)
		}
		if err != nil {
			var pe *iofs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("--token-file %s: %v", c.tokenFile, err)
		}
		raw = string(data)
	}
	if raw == "" {
		return usagef("init needs --token-file=FILE (a file holding USER:PASSWORD) or $INSTANCE_SYNC_TOKEN")
	}
	tok, err := instance.ParseToken(raw)
	if err != nil {
		return usagef("%v", err)
	}
	o, err := c.options()
	if err != nil {
		return err
	}
	cfg, err := engine.Init(ctx, engine.InitOptions{Options: o, URL: *url, Token: tok, Join: *join, Force: *force})
	if err != nil {
		return err
	}
	verb := "created"
	if *join != "" {
		verb = "joined"
	}
	fmt.Fprintf(env.Stdout, "%s instance %s for %s on %s\n", verb, cfg.InstanceID, cfg.User, cfg.URL)
	fmt.Fprintf(env.Stdout, "on another computer: instance-sync init --url=%s --join=%s --token-file=FILE --pack-folder=PATH\n", cfg.URL, cfg.InstanceID)
	return nil
}

func cmdEnable(env Env, name string, args []string) error {
	c := newCommand(env, name, "", withPack)
	o, err := c.setup(args, c.noArgs)
	if err != nil {
		return err
	}
	if name == "disable" {
		if err := engine.Disable(o); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "sync paused for this instance; \"instance-sync enable\" resumes it")
		return nil
	}
	if err := engine.Enable(o); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "sync resumed for this instance")
	return nil
}

func cmdStatus(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "status", "", withSession|withJSON)
	o, err := c.setup(args, c.noArgs)
	if err != nil {
		return err
	}
	r, err := engine.Status(ctx, o)
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(env, r)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	switch {
	case r.OptedIn:
		fmt.Fprintf(w, "opted in:\tyes\n")
	case r.Disabled:
		fmt.Fprintf(w, "opted in:\tpaused (\"instance-sync enable\" resumes)\n")
	case r.Copy != "":
		fmt.Fprintf(w, "opted in:\tnot synced: %s\n", r.Copy)
	default:
		fmt.Fprintf(w, "opted in:\tno (\"instance-sync setup\" opts in)\n")
	}
	if r.InstanceID != "" {
		fmt.Fprintf(w, "instance id:\t%s\n", r.InstanceID)
		fmt.Fprintf(w, "server:\t%s (user %s)\n", r.URL, r.User)
	}
	if r.OptedIn {
		fmt.Fprintf(w, "label:\t%s\n", r.Label)
		last := "never"
		if r.LastSnapshot != "" {
			last = fmt.Sprintf("%.8s at %s", r.LastSnapshot, r.LastSync.Local().Format(time.DateTime))
		}
		fmt.Fprintf(w, "last sync:\t%s\n", last)
		if r.Restoring != "" {
			fmt.Fprintf(w, "interrupted restore:\t%.8s (the next pull finishes it)\n", r.Restoring)
		}
		fmt.Fprintf(w, "pending local changes:\t%d files", len(r.PendingFiles))
		if len(r.PendingWorlds) > 0 {
			fmt.Fprintf(w, " (worlds: %s)", strings.Join(r.PendingWorlds, ", "))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "cloud:\t%s\n", r.Remote)
		for _, h := range r.RemoteHeads {
			ours := ""
			if h.Ours {
				ours = " (this computer's last sync)"
			}
			if h.Merged {
				ours = " (merged here; the next push records it)"
			}
			fmt.Fprintf(w, "cloud head:\t%.8s from %s at %s%s\n", h.ID, h.Host, h.Time.Local().Format(time.DateTime), ours)
		}
	}
	fmt.Fprintf(w, "scope include:\t%s\n", strings.Join(r.Include, " "))
	fmt.Fprintf(w, "scope exclude:\t%s\n", strings.Join(r.Exclude, " "))
	if len(r.Packwiz) > 0 {
		fmt.Fprintf(w, "owned by packwiz:\t%d files (never synced)\n", len(r.Packwiz))
	}
	return w.Flush()
}

func cmdHistory(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "history", "", withSession|withJSON)
	o, err := c.setup(args, c.noArgs)
	if err != nil {
		return err
	}
	h, err := engine.History(ctx, o)
	if errors.Is(err, instance.ErrNotOptedIn) {
		return fmt.Errorf("%s is not set up for sync; run \"instance-sync setup\"", o.PackFolder)
	}
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(env, h)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTIME\tHOST\tLABEL\tKIND\tSIZE\t")
	for _, e := range h {
		mark := ""
		if e.Head {
			mark += " head"
		}
		if e.Ours {
			mark += " (this computer)"
		}
		fmt.Fprintf(w, "%.8s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Local().Format(time.DateTime), e.Host, e.Label, e.Kind, size(e.Bytes), strings.TrimSpace(mark))
	}
	return w.Flush()
}

func cmdRestore(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "restore", "SNAPSHOT", withSession|withJSON)
	// The snapshot may come before or after the flags.
	var snapshot []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		snapshot, args = args[:1], args[1:]
	}
	o, err := c.setup(args, func() error {
		if len(snapshot) == 0 {
			snapshot = c.fs.Args()
		} else if c.fs.NArg() > 0 {
			return usagef("restore takes one SNAPSHOT, got %q too", c.fs.Arg(0))
		}
		if len(snapshot) != 1 {
			return usagef("restore needs one SNAPSHOT id (see \"instance-sync history\")")
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = engine.Restore(ctx, o, snapshot[0])
	if errors.Is(err, instance.ErrNotOptedIn) {
		return fmt.Errorf("%s is not set up for sync; run \"instance-sync setup\"", o.PackFolder)
	}
	return fail(o, err)
}

func cmdVersion(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "version", "", withPack)
	c.fs.StringVar(&c.resticBinary, "restic-binary", "", "`PATH` the restic executable to report on")
	if err := c.parse(args); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	v := env.Version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(env.Stdout, "instance-sync %s\n", v)
	fmt.Fprintf(env.Stdout, "protocol: %d\n", Protocol)
	pack := c.pack
	if pack == "" {
		pack = env.Getenv("INST_MC_DIR")
	}
	f, err := resticbin.Find(ctx, resticbin.Options{Flag: c.resticBinary, PackFolder: pack, NoDownload: true, Getenv: env.Getenv})
	if err != nil {
		fmt.Fprintf(env.Stdout, "restic: none found; restic %s is downloaded at the first sync that needs it\n", resticbin.Version)
		return nil
	}
	ver := f.Version
	if ver == "" {
		if ver, err = resticbin.ProbeVersion(ctx, f.Path); err != nil {
			ver = "unknown version"
		}
	}
	fmt.Fprintf(env.Stdout, "restic: %s from %s: %s\n", ver, f.Source, f.Path)
	return nil
}

// offline is the --offline=warn|fail flag of the hooks.
type offline struct{ value *string }

func offlineFlag(c *command, usage string) offline {
	return offline{c.fs.String("offline", "warn", "`warn|fail` "+usage)}
}

func (f offline) check() error {
	if *f.value != "warn" && *f.value != "fail" {
		return usagef("--offline must be warn or fail, not %q", *f.value)
	}
	return nil
}

func (f offline) fail() bool { return *f.value == "fail" }

func writeJSON(env Env, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
	return err
}

func size(n int64) string {
	if n == 0 {
		return "-"
	}
	return ui.HumanBytes(n)
}
