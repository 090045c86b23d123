package scope

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode/utf8"
)

// Hazard is a name in a snapshot that this computer's OS cannot hold as
// it is: restoring it would fail, or worse, land in another file (a name
// with ":" is an NTFS stream, "World" and "world" are one folder).
type Hazard struct {
	// Unit is what is left out: a world ("saves/<name>", the unit a
	// restore keeps whole) or, outside saves/, the file or folder with the
	// bad name.
	Unit   string
	Path   string // the name that is the problem
	Reason string // why, for the player
}

// NameHazards returns the hazards among paths (a snapshot's files and
// folders, relative, "/"-separated) for a computer running goos, one per
// unit, sorted by unit. Windows cannot hold names that differ only in
// case, reserved device names (CON, aux.dat, COM1…), names ending in a dot
// or a space, or the characters < > : " | ? * \ and control characters;
// macOS (case-insensitive by default) cannot hold names that differ only
// in case. Long paths are not a hazard: Go, restic and Java use Windows'
// long-path form by themselves. Linux can hold every name a snapshot has.
func NameHazards(paths []string, goos string) []Hazard {
	var windows bool
	switch goos {
	case "windows":
		windows = true
	case "darwin", "ios":
	default:
		return nil
	}
	byUnit := map[string]Hazard{}
	add := func(parts []string, i int, reason string) {
		u := hazardUnit(parts, i)
		if _, ok := byUnit[u]; !ok {
			byUnit[u] = Hazard{Unit: u, Path: strings.Join(parts[:i+1], "/"), Reason: reason}
		}
	}
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	folded := map[string]string{} // case-folded prefix → the first prefix seen
	for _, p := range sorted {
		parts := strings.Split(path.Clean(p), "/")
		for i, name := range parts {
			if windows {
				if r := windowsNameProblem(name); r != "" {
					add(parts, i, r)
				}
			}
			prefix := strings.Join(parts[:i+1], "/")
			key := strings.ToUpper(prefix)
			first, seen := folded[key]
			if !seen {
				folded[key] = prefix
				continue
			}
			if first != prefix {
				// Only the first differing level is reported: below it the
				// prefixes differ too.
				if path.Dir(first) == path.Dir(prefix) {
					other := strings.Split(first, "/")
					reason := fmt.Sprintf("%s and %s differ only in case, which %s cannot tell apart", first, prefix, osName(goos))
					add(other, i, reason)
					add(parts, i, reason)
				}
			}
		}
	}
	out := make([]Hazard, 0, len(byUnit))
	for _, h := range byUnit {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Unit < out[j].Unit })
	return out
}

func osName(goos string) string {
	if goos == "windows" {
		return "Windows"
	}
	return "macOS"
}

// hazardUnit is what a bad name at parts[i] takes out: its world when it
// is in saves/, else the entry itself.
func hazardUnit(parts []string, i int) string {
	if len(parts) >= 2 && parts[0] == "saves" && i >= 1 {
		return "saves/" + parts[1]
	}
	return strings.Join(parts[:i+1], "/")
}

// reservedNames are Windows' device names: with any extension, in any
// case, they open the device instead of a file.
var reservedNames = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true}

func init() {
	for _, d := range []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³"} {
		reservedNames["COM"+d] = true
		reservedNames["LPT"+d] = true
	}
}

// windowsNameProblem says why Windows cannot hold a file or folder named
// name, or "" when it can.
func windowsNameProblem(name string) string {
	for _, r := range name {
		if r < 32 || r == utf8.RuneError {
			return fmt.Sprintf("%q holds a control character, which Windows does not allow in names", name)
		}
		if strings.ContainsRune(`<>:"|?*\`, r) {
			return fmt.Sprintf(`"%s" holds "%c", which Windows does not allow in names`, name, r)
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return fmt.Sprintf(`"%s" ends in a dot or a space, which Windows drops`, name)
	}
	base, _, _ := strings.Cut(name, ".")
	if reservedNames[strings.ToUpper(strings.TrimRight(base, " "))] {
		return fmt.Sprintf(`"%s" is a reserved device name on Windows`, name)
	}
	return ""
}

// HazardUnits are the units of hs.
func HazardUnits(hs []Hazard) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Unit)
	}
	return out
}

// UnderUnit reports whether the file or folder rel is the unit u or inside
// it.
func UnderUnit(rel, u string) bool {
	return rel == u || strings.HasPrefix(rel, u+"/")
}

// Without returns s with the units (files or folders, relative paths)
// excluded.
func (s Scope) Without(units []string) Scope {
	if len(units) == 0 {
		return s
	}
	out := s
	out.Exclude = append([]string(nil), s.Exclude...)
	for _, u := range units {
		out.Exclude = append(out.Exclude, EscapePattern(u))
	}
	return out
}

// EscapePattern makes rel an exclude pattern that matches exactly rel
// (the matcher's "*", "?", "[" and "\" escaped).
func EscapePattern(rel string) string {
	var b strings.Builder
	for _, r := range rel {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
