package launcher

import (
	"errors"
	"strings"
)

// dialect is how a launcher turns one command string into a program and its
// arguments. Each launcher field is split differently, and a path that is
// quoted right for one is broken for another, so quoting is per dialect.
type dialect int

const (
	// qtSplitCommand is QProcess::splitCommand (Prism/MultiMC pre-launch and
	// post-exit): double quotes group, backslashes are literal, so Windows
	// paths need no escaping.
	qtSplitCommand dialect = iota
	// prismSplitArgs is Prism/MultiMC's Commandline::splitArgs (wrapper
	// command): inside quotes a backslash escapes the next character, so the
	// backslashes of a Windows path must be doubled.
	prismSplitArgs
	// posixShell is ATLauncher on Linux and macOS, which runs /bin/sh -c.
	posixShell
	// javaExec is ATLauncher on Windows: Runtime.exec splits on whitespace and
	// the Windows process layer joins the pieces again, so a double-quoted
	// path survives with literal backslashes.
	javaExec
)

// quoteExe quotes the instance-sync path for dialect d.
func quoteExe(d dialect, exe string) (string, error) {
	switch d {
	case qtSplitCommand, javaExec:
		if strings.ContainsRune(exe, '"') {
			return "", errors.New("the instance-sync path contains a double quote, which the launcher cannot run; move instance-sync to a folder without quotes")
		}
		return `"` + exe + `"`, nil
	case prismSplitArgs:
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
		return `"` + r.Replace(exe) + `"`, nil
	default:
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
		return `"` + r.Replace(exe) + `"`, nil
	}
}

// ourCommand is a launcher command that runs instance-sync.
type ourCommand struct {
	exe     string
	verb    string // pull, push or wrap
	adopted string // the player's own command chained after "--", verbatim
}

// parseOurs recognises a command that runs instance-sync, whatever folder the
// binary was in: a player who moved the binary must still be able to update
// or uninstall the hooks.
func parseOurs(d dialect, value string) (ourCommand, bool) {
	v := strings.TrimSpace(value)
	if v == "" {
		return ourCommand{}, false
	}
	var exe strings.Builder
	i := 0
	if v[0] == '"' {
		i = 1
		closed := false
		for i < len(v) {
			c := v[i]
			if c == '\\' && d != qtSplitCommand && d != javaExec && i+1 < len(v) {
				exe.WriteByte(v[i+1])
				i += 2
				continue
			}
			i++
			if c == '"' {
				closed = true
				break
			}
			exe.WriteByte(c)
		}
		if !closed {
			return ourCommand{}, false
		}
	} else {
		for i < len(v) && v[i] != ' ' && v[i] != '\t' {
			exe.WriteByte(v[i])
			i++
		}
	}
	if !isOurBinary(exe.String()) {
		return ourCommand{}, false
	}
	rest := strings.TrimLeft(v[i:], " \t")
	verb, after, _ := strings.Cut(rest, " ")
	if verb != "pull" && verb != "push" && verb != "wrap" {
		return ourCommand{}, false
	}
	c := ourCommand{exe: exe.String(), verb: verb}
	switch {
	case after == "--" || strings.HasSuffix(after, " --"):
	case strings.HasPrefix(after, "-- "):
		c.adopted = after[3:]
	default:
		if _, a, ok := strings.Cut(after, " -- "); ok {
			c.adopted = a
		}
	}
	return c, true
}

// isOurBinary matches the file name only, with either path separator, so a
// Windows path is recognised on any system.
func isOurBinary(path string) bool {
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	base = strings.TrimSuffix(strings.ToLower(base), ".exe")
	return base == "instance-sync"
}

// buildCommand writes the canonical command for verb. extra holds flags that
// go between the verb and "--".
func buildCommand(d dialect, exe, verb, extra, adopted string) (string, error) {
	q, err := quoteExe(d, exe)
	if err != nil {
		return "", err
	}
	s := q + " " + verb
	if extra != "" {
		s += " " + extra
	}
	switch {
	case verb == "wrap":
		s += " --"
		if adopted != "" {
			s += " " + adopted
		}
	case adopted != "":
		s += " -- " + adopted
	}
	return s, nil
}

// isPredecessor spots the Python cloud-sync hooks this product replaces: they
// must be replaced, not chained, or every launch would sync twice.
func isPredecessor(cmd string) bool {
	l := strings.ToLower(cmd)
	return strings.Contains(l, "cloud-sync.pyz") || strings.Contains(l, "cloud_sync")
}
