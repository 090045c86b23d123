// Package launcher wires instance-sync into a Minecraft launcher's own
// settings: Prism Launcher and MultiMC (prismlauncher.cfg, multimc.cfg,
// instance.cfg) and ATLauncher (configs/ATLauncher.json, instance.json).
//
// It edits those files the way the launcher itself writes them and touches
// nothing else, because players hand-edit them and launchers rewrite them: a
// line we do not own must survive byte-for-byte, and uninstall must give the
// player back exactly what they had, including a pre-launch command (such as
// packwiz-installer-bootstrap) that install chained behind "instance-sync pull".
package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/internal/atomicfile"
)

// Launcher names a supported launcher as the --launcher flag spells it.
type Launcher string

// The supported launchers.
const (
	Prism      Launcher = "prism"
	MultiMC    Launcher = "multimc"
	ATLauncher Launcher = "atlauncher"
)

// Mode is how instance-sync is wired in.
type Mode string

const (
	// ModeHooks uses the pre-launch (pull) and post-exit (push) commands.
	ModeHooks Mode = "hooks"
	// ModeWrap uses the wrapper command (wrap --), which also pushes after a
	// crash because it sees the game exit itself.
	ModeWrap Mode = "wrap"
)

// BackupSuffix is appended to a config file's name for the copy kept beside it.
const BackupSuffix = ".instance-sync.bak"

// Options selects the file to edit and carries every outside dependency, so
// tests can run Windows or macOS cases anywhere.
type Options struct {
	Launcher    Launcher
	Global      bool   // the launcher-wide settings (the default when Instance is empty)
	Instance    string // an instance folder, its game folder, or an instance name
	Mode        Mode   // default ModeHooks
	LauncherDir string // the launcher's data folder; found automatically when empty
	Binary      string // absolute path of instance-sync as the launcher should run it

	GOOS      string              // default runtime.GOOS
	Home      string              // default os.UserHomeDir
	Getenv    func(string) string // default os.Getenv
	IsRunning func(ctx context.Context, l Launcher) (bool, error)
}

// Result tells what Install or Uninstall did.
type Result struct {
	File    string
	Changed bool
	Backup  string // the backup written before the change, or ""
	State   State  // the file's state afterwards
	Notes   []string
}

// Slot names, as used in State.Foreign and messages.
const (
	SlotPreLaunch = "pre-launch"
	SlotPostExit  = "post-exit"
	SlotWrapper   = "wrapper"
)

// State is the state of one config file.
type State struct {
	Launcher  Launcher
	File      string
	Installed bool
	Mode      Mode              // when Installed
	Partial   bool              // only some of our commands are present
	Disabled  bool              // our commands are there but the launcher's switch for them is off
	Adopted   string            // the player's pre-launch (or wrapper) command chained behind ours
	Foreign   map[string]string // slot -> a command that is not ours

	// LauncherWide is the state of the launcher-wide file when this
	// instance sets no commands of its own and runs those.
	LauncherWide *State
}

// Summary is the one-line description printed by "hooks status".
func (s State) Summary() string {
	var parts []string
	switch {
	case s.Installed:
		parts = append(parts, fmt.Sprintf("installed (%s)", s.Mode))
	case s.Partial:
		parts = append(parts, "partly installed; run \"instance-sync hooks install\" again")
	default:
		parts = append(parts, "not installed")
	}
	if s.Disabled {
		parts = append(parts, "but custom commands are switched off in the launcher")
	}
	if s.Adopted != "" {
		slot := SlotPreLaunch
		if s.Mode == ModeWrap {
			slot = SlotWrapper
		}
		parts = append(parts, fmt.Sprintf("adopted %s command: %s", slot, s.Adopted))
	}
	for _, slot := range []string{SlotPreLaunch, SlotPostExit, SlotWrapper} {
		if v, ok := s.Foreign[slot]; ok {
			parts = append(parts, fmt.Sprintf("foreign %s command present: %s", slot, v))
		}
	}
	if w := s.LauncherWide; w != nil {
		parts = append(parts, fmt.Sprintf("the instance runs the launcher-wide commands (%s: %s)", w.File, w.Summary()))
	}
	return strings.Join(parts, "; ")
}

const (
	slotPre = iota
	slotPost
	slotWrap
)

var slotNames = [3]string{SlotPreLaunch, SlotPostExit, SlotWrapper}
var slotVerbs = [3]string{"pull", "push", "wrap"}

// config is one parsed launcher file.
type config interface {
	get(key string) (string, bool, error)
	raw(key string) (string, bool)
	set(key, value string) error
	setRaw(key, raw string) error
	remove(key string) error
	bytes() []byte
}

type iniConfig struct{ *iniDoc }

func (c iniConfig) setRaw(k, r string) error { c.iniDoc.setRaw(k, r); return nil }
func (c iniConfig) remove(k string) error    { c.iniDoc.remove(k); return nil }

type jsonConfig struct{ *jsonDoc }

func (c jsonConfig) get(k string) (string, bool, error) { return c.getString(k) }
func (c jsonConfig) set(k, v string) error              { return c.setString(k, v) }

// target is one config file and how its launcher reads it.
type target struct {
	launcher Launcher
	file     string
	instance bool
	keys     [3]string  // pre-launch, post-exit, wrapper
	dialects [3]dialect // how each of those is split into argv
	extra    [3]string  // flags after the verb
	flagKey  string     // the switch that makes the commands count, or ""
	noWrap   bool       // wrap mode unsupported
	parse    func([]byte) (config, error)

	global    *target // for an instance: the launcher-wide file it falls back to
	globalErr string  // why global is nil
}

// Check reports what is wrong with the options as given (no launcher, an
// unknown launcher or mode, --global with --instance), before any file is
// looked at.
func (o Options) Check() error {
	_, err := o.withDefaults()
	return err
}

func (o Options) withDefaults() (Options, error) {
	if o.GOOS == "" {
		o.GOOS = runtime.GOOS
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Home == "" {
		h, err := os.UserHomeDir()
		if err != nil && o.LauncherDir == "" {
			return o, fmt.Errorf("cannot find the home folder (%v); pass --launcher-dir=DIR", err)
		}
		o.Home = h
	}
	if o.IsRunning == nil {
		o.IsRunning = ProcessRunning
	}
	if o.Mode == "" {
		o.Mode = ModeHooks
	}
	switch o.Launcher {
	case Prism, MultiMC, ATLauncher:
	case "":
		return o, errors.New("no launcher given; pass --launcher=prism, --launcher=multimc or --launcher=atlauncher")
	default:
		return o, fmt.Errorf("unknown launcher %q; use prism, multimc or atlauncher", o.Launcher)
	}
	if o.Mode != ModeHooks && o.Mode != ModeWrap {
		return o, fmt.Errorf("unknown mode %q; use --mode=hooks or --mode=wrap", o.Mode)
	}
	if o.Global && o.Instance != "" {
		return o, errors.New("--global and --instance exclude each other; pass one of them")
	}
	return o, nil
}

func (o Options) resolve() (target, error) {
	t := target{launcher: o.Launcher, instance: o.Instance != ""}
	switch o.Launcher {
	case Prism, MultiMC:
		t.keys = [3]string{"PreLaunchCommand", "PostExitCommand", "WrapperCommand"}
		t.dialects = [3]dialect{qtSplitCommand, qtSplitCommand, prismSplitArgs}
		prism := o.Launcher == Prism
		t.parse = func(b []byte) (config, error) { return iniConfig{parseINI(b, prism)}, nil }
		if t.instance {
			t.flagKey = "OverrideCommands"
		}
	case ATLauncher:
		t.keys = [3]string{"preLaunchCommand", "postExitCommand", "wrapperCommand"}
		d := posixShell
		if o.GOOS == "windows" {
			d = javaExec
		}
		t.dialects = [3]dialect{d, d, d}
		// ATLauncher substitutes $INST_DIR in the text and exports nothing, so
		// the folder has to be on the command line. $INST_DIR exists in every
		// version that has commands; $INST_MC_DIR only in newer ones.
		t.extra = [3]string{`--pack-folder="$INST_DIR"`, `--pack-folder="$INST_DIR"`, ""}
		t.flagKey = "enableCommands"
		// Its post-exit command runs even after a crash, so the wrapper adds
		// nothing; one way of wiring keeps uninstall simple.
		t.noWrap = true
		var path []string
		if t.instance {
			path = []string{"launcher"}
		}
		t.parse = func(b []byte) (config, error) {
			d, err := parseJSONDoc(b, path...)
			if err != nil {
				return nil, err
			}
			return jsonConfig{d}, nil
		}
	}
	var err error
	if !t.instance {
		t.file, err = o.globalFile()
		return t, err
	}
	if t.file, err = o.instanceFile(); err != nil {
		return t, err
	}
	// The launcher-wide file the instance falls back to: beside the
	// instances folder the instance sits in, else the usual data folder.
	g := o
	g.Instance, g.Global = "", true
	if g.LauncherDir == "" {
		dir := filepath.Dir(filepath.Dir(filepath.Dir(t.file)))
		if exists(filepath.Join(dir, markerFile(o.Launcher))) {
			g.LauncherDir = dir
		}
	}
	if gt, err := g.resolve(); err == nil {
		t.global = &gt
	} else {
		t.globalErr = err.Error()
	}
	return t, nil
}

func (t target) load() (config, []byte, fs.FileMode, error) {
	data, err := os.ReadFile(t.file)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %v", t.file, err)
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(t.file); err == nil {
		mode = fi.Mode().Perm()
	}
	c, err := t.parse(data)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%s: cannot read it (%v); repair it or let %s recreate it", t.file, err, displayName(t.launcher))
	}
	return c, data, mode, nil
}

func (o Options) checkNotRunning(ctx context.Context, file string) error {
	running, err := o.IsRunning(ctx, o.Launcher)
	if err != nil {
		return fmt.Errorf("%s: cannot tell whether %s is running (%v); close it and retry", file, displayName(o.Launcher), err)
	}
	if running {
		return fmt.Errorf("%s: %s is running and rewrites this file when it exits; close %s and retry", file, displayName(o.Launcher), displayName(o.Launcher))
	}
	return nil
}

func prepare(opts Options) (Options, target, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return o, target{}, err
	}
	t, err := o.resolve()
	return o, t, err
}

// Install wires instance-sync into the selected config file. Running it again
// changes nothing.
func Install(ctx context.Context, opts Options) (Result, error) {
	o, t, err := prepare(opts)
	if err != nil {
		return Result{}, err
	}
	if !isAbsFor(o.GOOS, o.Binary) {
		return Result{}, fmt.Errorf("the instance-sync path %q is not absolute; pass --binary=ABSOLUTE-PATH", o.Binary)
	}
	if err := o.checkNotRunning(ctx, t.file); err != nil {
		return Result{}, err
	}
	var note string
	res, err := t.apply(func(c config) (err error) { note, err = t.install(c, o); return err }, o)
	if err != nil {
		return res, err
	}
	if note != "" && res.Changed {
		res.Notes = append(res.Notes, note)
	}
	res.Notes = append(res.Notes, o.exportIgnores(t, true)...)
	if !t.instance {
		res.Notes = append(res.Notes, o.overridingInstances(t.file)...)
	}
	if n := o.flatpakNote(t.file); n != "" {
		res.Notes = append(res.Notes, n)
	}
	return res, nil
}

// Uninstall removes instance-sync from the selected config file and puts back
// any command it had adopted.
func Uninstall(ctx context.Context, opts Options) (Result, error) {
	o, t, err := prepare(opts)
	if err != nil {
		return Result{}, err
	}
	if err := o.checkNotRunning(ctx, t.file); err != nil {
		return Result{}, err
	}
	var backup config
	if b, err := os.ReadFile(t.file + BackupSuffix); err == nil {
		if bc, err := t.parse(b); err == nil {
			backup = bc
		}
	}
	res, err := t.apply(func(c config) error { return t.uninstall(c, backup) }, o)
	if err != nil {
		return res, err
	}
	res.Notes = append(res.Notes, o.exportIgnores(t, false)...)
	return res, nil
}

// Status reports the state of the selected config file without changing it.
func Status(_ context.Context, opts Options) (State, error) {
	_, t, err := prepare(opts)
	if err != nil {
		return State{}, err
	}
	c, _, _, err := t.load()
	if err != nil {
		return State{}, err
	}
	st, err := t.status(c)
	if err != nil || t.global == nil || !t.inheritsAll(c) {
		return st, err
	}
	if gc, _, _, err := t.global.load(); err == nil {
		if gs, err := t.global.status(gc); err == nil {
			st.LauncherWide = &gs
		}
	}
	return st, nil
}

func (t target) apply(edit func(config) error, o Options) (Result, error) {
	c, orig, mode, err := t.load()
	if err != nil {
		return Result{}, err
	}
	pristine := !t.hasOurs(c)
	if err := edit(c); err != nil {
		return Result{}, err
	}
	res := Result{File: t.file}
	out := c.bytes()
	if !bytes.Equal(out, orig) {
		// The backup holds the last version without instance-sync in it:
		// rewriting it on every change would lose the player's original.
		bak := t.file + BackupSuffix
		if pristine || !exists(bak) {
			if err := atomicfile.Write(bak, orig, mode); err != nil {
				return Result{}, fmt.Errorf("%s: cannot write the backup (%v); check the folder's permissions", bak, err)
			}
			res.Backup = bak
		}
		// A config linked from elsewhere (dotfiles) stays a link: the
		// rename replaces the file it points to.
		dst := t.file
		if real, err := filepath.EvalSymlinks(t.file); err == nil {
			dst = real
		}
		if err := atomicfile.Write(dst, out, mode); err != nil {
			return Result{}, fmt.Errorf("%s: cannot write it (%v); check the file's permissions", t.file, err)
		}
		res.Changed = true
	}
	after, err := t.parse(out)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %v", t.file, err)
	}
	if res.State, err = t.status(after); err != nil {
		return Result{}, err
	}
	if res.Changed && o.Launcher == ATLauncher {
		res.Notes = append(res.Notes, "ATLauncher reads this file when it starts: start it again to use the change")
	}
	return res, nil
}
