package history

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// Rule is how a merge treats the files of one scope entry when this
// computer and the cloud changed them since the last sync. It is a string
// so scope.json can name it ("merge": {"config/": "folder"}).
type Rule string

const (
	// RuleWorlds: each folder directly inside the entry is one atomic unit
	// (a world: never mix the files of two versions); the same unit
	// changed on both sides is a collision the player decides. Files
	// lying directly in the entry are taken per file, newest wins.
	RuleWorlds Rule = "worlds"
	// RuleFolder: the whole entry is one atomic unit.
	RuleFolder Rule = "folder"
	// RuleAdditive: per file; a file changed on both sides keeps both,
	// the cloud's copy renamed "name (computer).ext".
	RuleAdditive Rule = "additive"
	// RuleNewest: per file; the version with the newer modification time
	// wins.
	RuleNewest Rule = "newest"
)

// Rules maps scope entries to the rule that overrides the default one: an
// entry as in scope.json, slash-separated, relative to the pack folder, a
// trailing slash marking a folder (everything under it). It is the shape
// of scope.json's "merge" object.
type Rules map[string]Rule

// defaultRules are the rules of the entries the default scope syncs.
// Anything else merges per file, newest wins.
var defaultRules = Rules{
	"saves/":          RuleWorlds,
	"screenshots/":    RuleAdditive,
	"schematics/":     RuleAdditive,
	"journeymap/":     RuleNewest,
	"XaeroWorldMap/":  RuleNewest,
	"XaeroWaypoints/": RuleNewest,
	"xaero/":          RuleNewest,
}

// Check reports the first entry with an unknown rule or a path that is
// not inside the pack folder.
func (r Rules) Check() error {
	for _, e := range slices.Sorted(maps.Keys(r)) {
		switch r[e] {
		case RuleWorlds, RuleFolder, RuleAdditive, RuleNewest:
		default:
			return fmt.Errorf("merge rule of %q: unknown rule %q; use worlds, folder, additive or newest", e, r[e])
		}
		if !validPath(strings.TrimSuffix(e, "/")) {
			return fmt.Errorf("merge rule of %q: not a path inside the pack folder; write it like \"config/\" or \"options.txt\"", e)
		}
	}
	return nil
}

// Unit is what a merge takes or keeps as a whole: an atomic folder (a
// world) or a single file.
type Unit struct {
	// Path is the folder with a trailing slash for an atomic unit
	// ("saves/World Two/"), else the file's path.
	Path string
	Rule Rule
}

// Atomic reports whether the unit is taken whole from one side, so that
// both sides changing it is a collision.
func (u Unit) Atomic() bool { return u.Rule == RuleWorlds || u.Rule == RuleFolder }

// Name is how messages call the unit: a world by its folder name, anything
// else by its path.
func (u Unit) Name() string {
	if u.Rule == RuleWorlds {
		return path.Base(u.Path)
	}
	return strings.TrimSuffix(u.Path, "/")
}

// UnitOf returns the unit a file belongs to (p slash-separated, relative
// to the pack folder) and its rule. The most specific entry of r or the
// defaults decides; r wins over a default for the same entry.
func (r Rules) UnitOf(p string) Unit {
	entry, rule := "", RuleNewest
	for _, rules := range []Rules{defaultRules, r} {
		for e, ru := range rules {
			if covers(e, p) && len(e) >= len(entry) {
				entry, rule = e, ru
			}
		}
	}
	switch {
	case rule == RuleFolder && strings.HasSuffix(entry, "/"):
		return Unit{Path: entry, Rule: rule}
	case rule == RuleWorlds && strings.HasSuffix(entry, "/"):
		if name, _, inFolder := strings.Cut(p[len(entry):], "/"); inFolder {
			return Unit{Path: entry + name + "/", Rule: rule}
		}
		return Unit{Path: p, Rule: RuleNewest}
	case rule == RuleWorlds:
		// A file cannot hold worlds: the file is its own unit.
		return Unit{Path: p, Rule: RuleFolder}
	}
	return Unit{Path: p, Rule: rule}
}

// covers reports whether scope entry e names p or a folder above it.
func covers(e, p string) bool {
	if strings.HasSuffix(e, "/") {
		return strings.HasPrefix(p, e)
	}
	return p == e
}

// validPath reports whether p is a clean slash-separated path inside the
// pack folder.
func validPath(p string) bool {
	return p != "" && p != "." && p != ".." && !strings.HasPrefix(p, "/") &&
		!strings.HasPrefix(p, "../") && !strings.ContainsRune(p, 0) && path.Clean(p) == p
}
