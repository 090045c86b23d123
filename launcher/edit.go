package launcher

import (
	"fmt"
	"strings"
)

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

// commandsActive reports whether the launcher runs this file's commands now.
// An ATLauncher instance without its own switch follows the launcher-wide
// one; when that cannot be read, the answer is the careful one, no.
func (t target) commandsActive(c config) bool {
	if r, ok := c.raw(t.flagKey); t.launcher == ATLauncher && t.instance && (!ok || r == "null") {
		if t.global == nil {
			return false
		}
		gc, _, _, err := t.global.load()
		return err == nil && t.global.flagOn(gc)
	}
	return t.flagOn(c)
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
	if (s.Installed || s.Partial) && !t.commandsActive(c) {
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
	if !t.commandsActive(c) {
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
