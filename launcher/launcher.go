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

func markerFile(l Launcher) string {
	switch l {
	case Prism:
		return "prismlauncher.cfg"
	case MultiMC:
		return "multimc.cfg"
	default:
		return filepath.Join("configs", "ATLauncher.json")
	}
}

func displayName(l Launcher) string {
	switch l {
	case Prism:
		return "Prism Launcher"
	case MultiMC:
		return "MultiMC"
	default:
		return "ATLauncher"
	}
}

func (o Options) globalFile() (string, error) {
	dir, err := o.dataDir()
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, markerFile(o.Launcher))
	if !exists(f) {
		return "", fmt.Errorf("%s not found; start %s once so it creates it, or pass the right --launcher-dir", f, displayName(o.Launcher))
	}
	return f, nil
}

func (o Options) instanceFile() (string, error) {
	name := "instance.cfg"
	if o.Launcher == ATLauncher {
		name = "instance.json"
	}
	p := o.Instance
	for _, dir := range []string{p, filepath.Dir(p)} {
		if f := filepath.Join(dir, name); exists(f) {
			return f, nil
		}
	}
	// A bare name is looked up in the launcher's instances folder.
	if !strings.ContainsAny(p, `/\`) {
		if dir, err := o.dataDir(); err == nil {
			f := filepath.Join(o.instancesDir(dir), p, name)
			if exists(f) {
				return f, nil
			}
		}
	}
	return "", fmt.Errorf("no %s in %s; pass --instance=PATH with the instance folder (the one holding %s)", name, p, name)
}

// instancesDir honours Prism/MultiMC's InstanceDir setting, which players
// move to another drive.
func (o Options) instancesDir(dataDir string) string {
	if o.Launcher != ATLauncher {
		if b, err := os.ReadFile(filepath.Join(dataDir, markerFile(o.Launcher))); err == nil {
			if v, ok, err := parseINI(b, o.Launcher == Prism).get("InstanceDir"); err == nil && ok && v != "" {
				if filepath.IsAbs(v) {
					return v
				}
				return filepath.Join(dataDir, v)
			}
		}
	}
	return filepath.Join(dataDir, "instances")
}

// DataDirCandidates lists where a launcher keeps its data on o.GOOS, in the
// order they are tried.
func DataDirCandidates(o Options) []string {
	o, _ = o.withDefaults()
	join := func(elem ...string) string {
		if o.GOOS == "windows" {
			for i := range elem {
				elem[i] = strings.TrimRight(elem[i], `\/`)
			}
			return strings.Join(elem, `\`)
		}
		return filepath.ToSlash(filepath.Join(elem...))
	}
	home := o.Home
	appData := o.Getenv("APPDATA")
	if appData == "" && o.GOOS == "windows" {
		appData = join(home, "AppData", "Roaming")
	}
	xdg := o.Getenv("XDG_DATA_HOME")
	if xdg == "" {
		xdg = join(home, ".local", "share")
	}
	macSupport := join(home, "Library", "Application Support")
	switch o.Launcher {
	case Prism:
		switch o.GOOS {
		case "windows":
			return []string{join(appData, "PrismLauncher")}
		case "darwin":
			return []string{join(macSupport, "PrismLauncher")}
		default:
			return []string{
				join(xdg, "PrismLauncher"),
				join(home, ".var", "app", "org.prismlauncher.PrismLauncher", "data", "PrismLauncher"),
			}
		}
	case MultiMC:
		// MultiMC is portable: its data sits beside MultiMC.exe on Windows,
		// so there is nothing to guess there.
		switch o.GOOS {
		case "windows":
			return nil
		case "darwin":
			return []string{join(macSupport, "MultiMC")}
		default:
			return []string{join(home, ".local", "share", "multimc")}
		}
	default:
		switch o.GOOS {
		case "windows":
			return []string{join(appData, "ATLauncher")}
		case "darwin":
			return []string{join(macSupport, "ATLauncher")}
		default:
			return []string{
				join(xdg, "ATLauncher"),
				join(home, ".local", "share", "atlauncher"),
				join(home, ".atlauncher"),
				join(home, ".var", "app", "com.atlauncher.ATLauncher", "data", "ATLauncher"),
			}
		}
	}
}

func (o Options) dataDir() (string, error) {
	if o.LauncherDir != "" {
		return o.LauncherDir, nil
	}
	cands := DataDirCandidates(o)
	for _, c := range cands {
		if exists(filepath.Join(c, markerFile(o.Launcher))) {
			return c, nil
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("%s keeps its settings beside its program; pass --launcher-dir=DIR with the folder that holds %s", displayName(o.Launcher), markerFile(o.Launcher))
	}
	return "", fmt.Errorf("no %s data folder found (looked in %s); pass --launcher-dir=DIR", displayName(o.Launcher), strings.Join(cands, ", "))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// slotState is one command field as found in the file.
type slotState struct {
	value   string
	present bool
	ours    bool
	cmd     ourCommand
}

func (t target) read(c config) ([3]slotState, error) {
	var st [3]slotState
	for i, k := range t.keys {
		v, ok, err := c.get(k)
		if err != nil {
			return st, fmt.Errorf("%s: cannot read %s (%v); fix or clear it in %s", t.file, k, err, displayName(t.launcher))
		}
		st[i].value, st[i].present = v, ok
		st[i].cmd, st[i].ours = parseOurs(t.dialects[i], v)
	}
	return st, nil
}

func (t target) flagOn(c config) bool {
	if t.flagKey == "" {
		return true
	}
	r, _ := c.raw(t.flagKey)
	return strings.TrimSpace(r) == "true"
}

func (t target) status(c config) (State, error) {
	st, err := t.read(c)
	if err != nil {
		return State{}, err
	}
	s := State{Launcher: t.launcher, File: t.file, Foreign: map[string]string{}}
	for i := range st {
		if st[i].value != "" && !st[i].ours {
			s.Foreign[slotNames[i]] = st[i].value
		}
	}
	pre, post, wrap := st[slotPre], st[slotPost], st[slotWrap]
	hooks := pre.ours && pre.cmd.verb == "pull" && post.ours && post.cmd.verb == "push"
	wrapped := wrap.ours && wrap.cmd.verb == "wrap"
	switch {
	case hooks:
		s.Installed, s.Mode, s.Adopted = true, ModeHooks, pre.cmd.adopted
	case wrapped:
		s.Installed, s.Mode, s.Adopted = true, ModeWrap, wrap.cmd.adopted
	case pre.ours || post.ours || wrap.ours:
		s.Partial = true
	}
	if (s.Installed || s.Partial) && !t.flagOn(c) {
		s.Disabled = true
	}
	return s, nil
}

func (t target) hasOurs(c config) bool {
	st, err := t.read(c)
	if err != nil {
		return false
	}
	return st[slotPre].ours || st[slotPost].ours || st[slotWrap].ours
}

// setSlot writes value unless the file already says it.
func (t target) setSlot(c config, i int, st slotState, value string) error {
	if st.value == value && (st.present || value == "") {
		return nil
	}
	if err := c.set(t.keys[i], value); err != nil {
		return fmt.Errorf("%s: %v", t.file, err)
	}
	return nil
}

// inheritance is what an instance falls back to for the command fields it
// does not set itself.
type inheritance struct {
	eff       [3]slotState // the commands that actually run for the instance
	inherited [3]bool      // eff[i] comes from the launcher-wide file
	note      string       // set when the launcher-wide file could not be read
}

// inherit works out the commands that really run for an instance, so that an
// instance install adopts a launcher-wide packwiz pre-launch command instead
// of silently shadowing it. Prism/MultiMC take all three from the global
// file unless OverrideCommands is on; ATLauncher falls back field by field.
func (t target) inherit(c config, st [3]slotState) inheritance {
	h := inheritance{eff: st}
	if !t.instance {
		return h
	}
	var from []int
	flagRaw, flagSet := c.raw(t.flagKey)
	flagSet = flagSet && flagRaw != "null"
	if t.launcher == ATLauncher {
		if flagSet && strings.TrimSpace(flagRaw) != "true" {
			return h
		}
		for i, k := range t.keys {
			if r, ok := c.raw(k); !ok || r == "null" {
				from = append(from, i)
			}
		}
	} else if !t.flagOn(c) {
		from = []int{slotPre, slotPost, slotWrap}
	}
	if len(from) == 0 {
		return h
	}
	if t.global == nil {
		h.note = fmt.Sprintf("could not read the launcher-wide settings (%s); if they hold custom commands, check that this instance still runs them", t.globalErr)
		return h
	}
	g := *t.global
	gc, _, _, err := g.load()
	if err != nil {
		h.note = fmt.Sprintf("could not read the launcher-wide settings (%v); if they hold custom commands, check that this instance still runs them", err)
		return h
	}
	if t.launcher == ATLauncher && !flagSet && !g.flagOn(gc) {
		return h // the launcher-wide commands are switched off
	}
	gst, err := g.read(gc)
	if err != nil {
		h.note = err.Error()
		return h
	}
	for _, i := range from {
		h.eff[i], h.inherited[i] = gst[i], true
	}
	return h
}

func (t target) install(c config, o Options) (string, error) {
	if o.Mode == ModeWrap && t.noWrap {
		return "", fmt.Errorf("%s: ATLauncher runs its post-exit command even after a crash, so wrap mode adds nothing there; use --mode=hooks", t.file)
	}
	st, err := t.read(c)
	if err != nil {
		return "", err
	}
	on := t.flagOn(c)
	if !on && t.launcher != ATLauncher {
		// Switching the commands on would also run whatever the player
		// left there switched off; they should decide about it first.
		for i := range st {
			if st[i].value != "" && !st[i].ours {
				return "", fmt.Errorf("%s: has a %s command that is switched off (%s is not true): %s; clear it in %s and retry", t.file, slotNames[i], t.flagKey, st[i].value, displayName(t.launcher))
			}
		}
	}
	h := t.inherit(c, st)
	eff := h.eff
	where := func(i int) string {
		if h.inherited[i] {
			return "the launcher-wide " + slotNames[i] + " command"
		}
		return "the " + slotNames[i] + " command"
	}
	build := func(i int, adopted string) (string, error) {
		s, err := buildCommand(t.dialects[i], o.Binary, slotVerbs[i], t.extra[i], adopted)
		if err != nil {
			return "", fmt.Errorf("%s: %v", t.file, err)
		}
		return s, nil
	}
	adoptable := func(i int) (string, error) {
		s := eff[i]
		if s.ours {
			return s.cmd.adopted, nil
		}
		if s.value == "" {
			return "", nil
		}
		if isPredecessor(s.value) {
			return "", fmt.Errorf("%s: %s runs the old cloud-sync.pyz (%s); delete the old cloud-sync commands in %s, then retry", t.file, where(i), s.value, displayName(t.launcher))
		}
		if t.dialects[i] == posixShell && strings.ContainsAny(s.value, "|&;<>()\n`") {
			return "", fmt.Errorf("%s: %s uses shell operators (%s), which cannot be chained behind instance-sync; move it into a script and put the script's path there, then retry", t.file, where(i), s.value)
		}
		return s.value, nil
	}
	// keep is what a field we do not take over must hold so that the same
	// thing runs as before: our own command is unwound, and a launcher-wide
	// one is copied in because the instance stops falling back to it.
	keep := func(i int) error {
		v := eff[i].value
		if eff[i].ours {
			v = eff[i].cmd.adopted
		}
		if h.inherited[i] && t.launcher == ATLauncher && !eff[i].ours {
			return nil // ATLauncher keeps falling back field by field
		}
		return t.setSlot(c, i, st[i], v)
	}
	var want [3]string
	if o.Mode == ModeHooks {
		adopted, err := adoptable(slotPre)
		if err != nil {
			return "", err
		}
		if p := eff[slotPost]; p.value != "" && !p.ours {
			if isPredecessor(p.value) {
				return "", fmt.Errorf("%s: %s runs the old cloud-sync.pyz (%s); delete the old cloud-sync commands in %s, then retry", t.file, where(slotPost), p.value, displayName(t.launcher))
			}
			hint := "; clear it or move it into a script, or use --mode=wrap"
			if t.noWrap {
				hint = "; clear it or move it into a script"
			}
			return "", fmt.Errorf("%s: %s is not instance-sync's (%s) and cannot be chained%s", t.file, where(slotPost), p.value, hint)
		}
		if want[slotPre], err = build(slotPre, adopted); err != nil {
			return "", err
		}
		if want[slotPost], err = build(slotPost, ""); err != nil {
			return "", err
		}
		for _, i := range []int{slotPre, slotPost} {
			if err := t.setSlot(c, i, st[i], want[i]); err != nil {
				return "", err
			}
		}
		if err := keep(slotWrap); err != nil {
			return "", err
		}
	} else {
		adopted, err := adoptable(slotWrap)
		if err != nil {
			return "", err
		}
		if want[slotWrap], err = build(slotWrap, adopted); err != nil {
			return "", err
		}
		if err := t.setSlot(c, slotWrap, st[slotWrap], want[slotWrap]); err != nil {
			return "", err
		}
		for _, i := range []int{slotPre, slotPost} {
			if err := keep(i); err != nil {
				return "", err
			}
		}
	}
	if !on {
		if err := c.setRaw(t.flagKey, "true"); err != nil {
			return "", fmt.Errorf("%s: %v", t.file, err)
		}
	}
	return h.note, nil
}

// uninstall puts back what the player had. Where the backup holds the same
// value, its exact bytes are reused, so a file that went through install and
// uninstall is identical to the original.
func (t target) uninstall(c config, backup config) error {
	st, err := t.read(c)
	if err != nil {
		return err
	}
	if !st[slotPre].ours && !st[slotPost].ours && !st[slotWrap].ours {
		return nil
	}
	// An instance whose commands were switched off before install ran the
	// launcher-wide ones, which install copied in; going back to the backup's
	// fields as they were restores exactly that.
	inactiveBefore := t.instance && t.launcher != ATLauncher && backup != nil && !t.flagOn(backup)
	var after [3]string
	for i := range st {
		after[i] = st[i].value
		if inactiveBefore {
			if r, ok := backup.raw(t.keys[i]); ok {
				if err := c.setRaw(t.keys[i], r); err != nil {
					return err
				}
			} else if err := c.remove(t.keys[i]); err != nil {
				return err
			}
			continue
		}
		if !st[i].ours {
			continue
		}
		after[i] = st[i].cmd.adopted
		if t.instance && t.launcher == ATLauncher && backup != nil {
			// The field was unset and fell back to the launcher-wide one.
			if r, ok := backup.raw(t.keys[i]); !ok || r == "null" {
				if ok {
					err = c.setRaw(t.keys[i], r)
				} else {
					err = c.remove(t.keys[i])
				}
				if err != nil {
					return err
				}
				continue
			}
		}
		if err := t.restore(c, backup, t.keys[i], after[i]); err != nil {
			return err
		}
	}
	if t.flagKey == "" {
		return nil
	}
	if backup != nil {
		if r, ok := backup.raw(t.flagKey); ok {
			return c.setRaw(t.flagKey, r)
		}
		return c.remove(t.flagKey)
	}
	if after[0] == "" && after[1] == "" && after[2] == "" {
		return c.setRaw(t.flagKey, "false")
	}
	return nil
}

func (t target) restore(c, backup config, key, value string) error {
	if backup != nil {
		if r, ok := backup.raw(key); ok {
			if v, _, err := backup.get(key); err == nil && v == value {
				return c.setRaw(key, r)
			}
		} else if value == "" {
			return c.remove(key)
		}
	}
	if value == "" {
		return c.remove(key)
	}
	if err := c.set(key, value); err != nil {
		return fmt.Errorf("%s: %v", t.file, err)
	}
	return nil
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
	if !t.instance {
		res.Notes = append(res.Notes, o.overridingInstances(t.file)...)
	}
	if n := o.flatpakNote(t.file); n != "" {
		res.Notes = append(res.Notes, n)
	}
	return res, nil
}

// overridingInstances names the instances whose own command settings replace
// the launcher-wide ones: a global install silently does not reach them, and
// the player would wonder why those instances never sync.
func (o Options) overridingInstances(globalFile string) []string {
	dataDir := filepath.Dir(globalFile)
	name := "instance.cfg"
	if o.Launcher == ATLauncher {
		dataDir = filepath.Dir(dataDir) // configs/ATLauncher.json
		name = "instance.json"
	}
	instDir := o.instancesDir(dataDir)
	ents, err := os.ReadDir(instDir)
	if err != nil {
		return nil
	}
	var notes []string
	for _, e := range ents {
		dir := filepath.Join(instDir, e.Name())
		if !e.IsDir() || !exists(filepath.Join(dir, name)) {
			continue
		}
		io := o
		io.Global, io.Instance = false, dir
		t, err := io.resolve()
		if err != nil {
			continue
		}
		c, _, _, err := t.load()
		if err != nil {
			continue
		}
		overrides := t.flagOn(c)
		if o.Launcher == ATLauncher {
			// ATLauncher falls back to the global value field by field.
			r, ok := c.raw(t.flagKey)
			overrides = ok && strings.TrimSpace(r) == "false"
			for _, k := range t.keys {
				if r, ok := c.raw(k); ok && r != "null" {
					overrides = true
				}
			}
		}
		if !overrides {
			continue
		}
		if st, err := t.status(c); err == nil && !st.Installed {
			notes = append(notes, fmt.Sprintf("instance %q sets its own custom commands, so the global ones do not run for it; run \"instance-sync hooks install --launcher=%s --instance=%s\" too", e.Name(), o.Launcher, dir))
		}
	}
	return notes
}

// flatpakNote warns that the Flatpak build of Prism runs commands inside its
// sandbox, where a binary in the player's home folder is invisible.
func (o Options) flatpakNote(file string) string {
	const app = "org.prismlauncher.PrismLauncher"
	sandbox := filepath.Join(o.Home, ".var", "app", app)
	if o.Launcher != Prism || !strings.HasPrefix(file, sandbox+string(filepath.Separator)) || strings.HasPrefix(o.Binary, sandbox+"/") {
		return ""
	}
	return fmt.Sprintf("this Prism Launcher is a Flatpak: let it run instance-sync with \"flatpak override --user --filesystem=%s:ro %s\"", filepath.Dir(o.Binary), app)
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
	return t.apply(func(c config) error { return t.uninstall(c, backup) }, o)
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

// inheritsAll reports whether an instance sets none of the command fields
// and so runs the launcher-wide ones.
func (t target) inheritsAll(c config) bool {
	if t.launcher != ATLauncher {
		return !t.flagOn(c)
	}
	if r, ok := c.raw(t.flagKey); ok && r != "null" && strings.TrimSpace(r) != "true" {
		return false
	}
	for _, k := range t.keys {
		if r, ok := c.raw(k); ok && r != "null" {
			return false
		}
	}
	return true
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

func isAbsFor(goos, p string) bool {
	if goos == "windows" {
		return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') || strings.HasPrefix(p, `\\`)
	}
	return strings.HasPrefix(p, "/")
}
