// Package scope decides which files of an instance are player data to sync,
// and records what they looked like (the manifest) so a later run can tell
// whether anything changed without reading file contents.
package scope

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// defaultInclude is synced unless scope.json removes it. A trailing slash
// marks a folder.
var defaultInclude = []string{
	"saves/", "options.txt", "optionsof.txt", "optionsshaders.txt", "servers.dat",
	"hotbar.nbt", "screenshots/", "schematics/", "journeymap/", "XaeroWorldMap/",
	"XaeroWaypoints/", "xaero/", "resourcepacks/", "shaderpacks/",
}

// defaultExclude is never synced, even inside included folders.
var defaultExclude = []string{
	".cloud-sync/", "**/session.lock", "logs/", "crash-reports/", ".cache/", ".fabric/",
	".quilt/", ".mixin.out/", "natives/", "*.dat_old", "*.tmp",
}

// alwaysExcluded cannot be removed by scope.json: syncing our own state or
// a running game's lock file would break every sync after it.
var alwaysExcluded = []string{".cloud-sync/", "**/session.lock"}

// packwizOwn are packwiz's own files in the pack folder.
var packwizOwn = []string{
	"packwiz.json", "packwiz-installer.jar", "packwiz-installer-bootstrap.jar",
}

// Overrides is the content of .cloud-sync/scope.json. An entry adds to the
// defaults; an entry starting with "!" removes that entry from them.
type Overrides struct {
	Include []string `json:"include"`
	Exclude []string `json:"exclude"`
	// Merge overrides the merge rule of an entry (DESIGN.md "Per-world
	// merge"): entry → "worlds", "folder", "additive" or "newest".
	Merge map[string]string `json:"merge,omitempty"`
}

// ParseOverrides parses scope.json. Unknown fields are refused so that a
// typo ("exlude") does not silently sync what the player meant to keep out.
func ParseOverrides(data []byte) (Overrides, error) {
	var o Overrides
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return Overrides{}, err
	}
	if dec.More() {
		return Overrides{}, errors.New("unexpected data after the JSON object")
	}
	for _, list := range [][]string{o.Include, o.Exclude} {
		for _, e := range list {
			if err := checkEntry(strings.TrimPrefix(e, "!")); err != nil {
				return Overrides{}, fmt.Errorf("entry %q: %w", e, err)
			}
		}
	}
	return o, nil
}

func checkEntry(e string) error {
	switch {
	case e == "" || e == "/":
		return errors.New("empty path")
	case strings.HasPrefix(e, "/") || strings.Contains(e, "\\") || filepath.IsAbs(e) || (len(e) > 1 && e[1] == ':'):
		return errors.New("must be relative to the pack folder, with forward slashes")
	}
	for _, seg := range strings.Split(strings.TrimSuffix(e, "/"), "/") {
		if seg == ".." || seg == "." || seg == "" {
			return errors.New("must not contain empty, . or .. segments")
		}
	}
	if _, err := path.Match(e, ""); err != nil {
		return fmt.Errorf("bad pattern: %w", err)
	}
	return nil
}

// Scope is the effective list of what is synced.
type Scope struct {
	Include []string // paths relative to the pack folder; trailing "/" = folder
	Exclude []string // patterns, see Excluded
	// Packwiz lists files packwiz owns (exact relative paths); they are
	// excluded so a sync never reverts a pack update.
	Packwiz []string
	// Merge is scope.json's merge rule overrides (entry → rule name).
	Merge map[string]string
}

// New applies overrides to the defaults.
func New(o Overrides) Scope {
	return Scope{
		Include: apply(defaultInclude, o.Include, nil),
		Exclude: apply(defaultExclude, o.Exclude, alwaysExcluded),
		Merge:   o.Merge,
	}
}

func apply(base, changes, keep []string) []string {
	out := append([]string(nil), base...)
	for _, c := range changes {
		if name, ok := strings.CutPrefix(c, "!"); ok {
			if contains(keep, name) {
				continue
			}
			out = remove(out, name)
			continue
		}
		if !contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, e := range list {
		if e != s {
			out = append(out, e)
		}
	}
	return out
}

// PackwizFiles reads packwiz.json in pack and returns the files packwiz
// owns. A missing packwiz.json means no packwiz.
func PackwizFiles(pack string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(pack, "packwiz.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pw struct {
		CachedFiles map[string]json.RawMessage `json:"cachedFiles"`
	}
	if err := json.Unmarshal(data, &pw); err != nil {
		return nil, fmt.Errorf("%s: %w; fix or delete it and run packwiz-installer again", filepath.Join(pack, "packwiz.json"), err)
	}
	out := append([]string(nil), packwizOwn...)
	for k := range pw.CachedFiles {
		out = append(out, path.Clean(filepath.ToSlash(k)))
	}
	sort.Strings(out)
	return out, nil
}

// Included reports whether rel (slash-separated, relative to the pack
// folder) lies inside an include entry.
func (s Scope) Included(rel string) bool {
	for _, inc := range s.Include {
		if dir, ok := strings.CutSuffix(inc, "/"); ok {
			if rel == dir || strings.HasPrefix(rel, dir+"/") {
				return true
			}
		} else if rel == inc {
			return true
		}
	}
	return false
}

// Fingerprint identifies the scope (includes, excludes and packwiz's
// files): two walks of one folder with equal fingerprints record the same
// files.
func (s Scope) Fingerprint() string {
	h := sha256.New()
	for _, list := range [][]string{s.Include, s.Exclude, s.Packwiz} {
		for _, e := range list {
			h.Write([]byte(e))
			h.Write([]byte{0})
		}
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Parents returns the folders above the include entries, the pack
// folder ("") first and each folder before the ones inside it: a file or
// folder in scope appears or vanishes as an entry of one of them.
func (s Scope) Parents() []string {
	out := []string{""}
	for _, inc := range s.Include {
		parts := strings.Split(strings.TrimSuffix(inc, "/"), "/")
		for i := 1; i < len(parts); i++ {
			if p := strings.Join(parts[:i], "/"); !contains(out, p) {
				out = append(out, p)
			}
		}
	}
	depth := func(p string) int {
		if p == "" {
			return -1
		}
		return strings.Count(p, "/")
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i]) < depth(out[j]) })
	return out
}

// Affects reports whether a change to rel (slash-separated, relative to
// the pack folder; isDir when it is a folder) can change what a walk
// records: rel is in scope, or is a folder above an include entry.
func (s Scope) Affects(rel string, isDir bool) bool {
	if s.Excluded(rel, isDir) {
		return false
	}
	if s.Included(rel) {
		return true
	}
	for _, inc := range s.Include {
		if strings.HasPrefix(inc, rel+"/") {
			return true
		}
	}
	return false
}

// Excluded reports whether rel is excluded. isDir says whether rel is a
// folder. Pattern rules, gitignore-like:
//   - a trailing "/" matches only folders (and so everything inside them);
//   - a pattern with another "/" is anchored at the pack folder;
//   - a pattern without "/" matches a name at any depth;
//   - "*" and "?" match within one name, "**" any number of names.
func (s Scope) Excluded(rel string, isDir bool) bool {
	for _, p := range s.Packwiz {
		if rel == p {
			return true
		}
	}
	for _, p := range s.Exclude {
		if matchPattern(p, rel, isDir) {
			return true
		}
	}
	return false
}

// InScope reports whether the file rel is synced: included, and neither it
// nor any folder above it excluded.
func (s Scope) InScope(rel string) bool {
	if !s.Included(rel) {
		return false
	}
	if dir := path.Dir(rel); dir != "." && s.folderExcluded(dir) {
		return false
	}
	return !s.Excluded(rel, false)
}

// folderExcluded reports whether the folder dir or any folder above it is
// excluded.
func (s Scope) folderExcluded(dir string) bool {
	parts := strings.Split(dir, "/")
	for i := 1; i <= len(parts); i++ {
		if s.Excluded(strings.Join(parts[:i], "/"), true) {
			return true
		}
	}
	return false
}

func matchPattern(p, rel string, isDir bool) bool {
	p, dirOnly := strings.CutSuffix(p, "/")
	if dirOnly && !isDir {
		return false
	}
	// "**/name" matches what the bare name matches: the last component
	// at any depth. Both run for every file of every walk, so they are
	// matched without splitting paths.
	if name, ok := strings.CutPrefix(p, "**/"); ok && !strings.Contains(name, "/") && name != "**" {
		p = name
	}
	if !strings.Contains(p, "/") {
		// A bare name matches the last component at any depth.
		return matchName(p, rel[strings.LastIndexByte(rel, '/')+1:])
	}
	return matchSegs(strings.Split(p, "/"), strings.Split(rel, "/"))
}

func matchSegs(p, r []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			for i := 0; i <= len(r); i++ {
				if matchSegs(p[1:], r[i:]) {
					return true
				}
			}
			return false
		}
		if len(r) == 0 {
			return false
		}
		if ok, _ := path.Match(p[0], r[0]); !ok {
			return false
		}
		p, r = p[1:], r[1:]
	}
	return len(r) == 0
}

// matchName is path.Match for one name, with the two shapes every default
// pattern has ("session.lock", "*.tmp") answered without the general
// matcher.
func matchName(p, name string) bool {
	if !strings.ContainsAny(p, `*?[\`) {
		return p == name
	}
	if suffix, ok := strings.CutPrefix(p, "*"); ok && !strings.ContainsAny(suffix, `*?[\`) {
		return strings.HasSuffix(name, suffix)
	}
	ok, _ := path.Match(p, name)
	return ok
}

// ResticFilter returns, when restic's own filtering would pick exactly the
// files of m, the folders and files to name to restic (targets) and the
// exclude patterns to pass it. restic walks named folders faster than it
// takes a list of thousands of files, but its patterns are not ours: ok is
// false (name the files one by one) unless every exclude pattern is a bare
// name, which both match the same way at any depth, no file packwiz owns
// lies in the scope, nothing in scope is a symlink or device, and no file
// kept is named like a folder-only pattern (restic would drop it).
func (s Scope) ResticFilter(m Manifest, f Facts) (targets, excludes []string, ok bool) {
	return s.ResticFilterPaths(maps.Keys(m), f)
}

// ResticFilterPaths is ResticFilter for the files' paths.
func (s Scope) ResticFilterPaths(paths iter.Seq[string], f Facts) (targets, excludes []string, ok bool) {
	if f.Irregular > 0 {
		return nil, nil, false
	}
	for _, p := range s.Packwiz {
		if s.Included(p) {
			return nil, nil, false
		}
	}
	var dirOnly []string
	for _, p := range s.Exclude {
		q, isDir := strings.CutSuffix(p, "/")
		if name, cut := strings.CutPrefix(q, "**/"); cut {
			q = name
		}
		if q == "" || strings.Contains(q, "/") || strings.Contains(q, "**") {
			return nil, nil, false
		}
		if isDir {
			dirOnly = append(dirOnly, q)
		}
		excludes = append(excludes, q)
	}
	// Made once, since the loop below runs for every file: the
	// folder-only names without wildcards as a set, and each include entry
	// (the file it names or the prefix of what its folder holds) under the
	// first component of its path.
	exactDirOnly := map[string]bool{}
	var wildDirOnly []string
	for _, q := range dirOnly {
		if strings.ContainsAny(q, `*?[\`) {
			wildDirOnly = append(wildDirOnly, q)
		} else {
			exactDirOnly[q] = true
		}
	}
	type include struct {
		name, prefix string
		isDir        bool
	}
	byTop := map[string][]include{}
	for _, inc := range s.Include {
		dir, isDir := strings.CutSuffix(inc, "/")
		top, _, _ := strings.Cut(dir, "/")
		byTop[top] = append(byTop[top], include{name: dir, prefix: dir + "/", isDir: isDir})
	}
	used := map[string]bool{}
	for p := range paths {
		base := p[strings.LastIndexByte(p, '/')+1:]
		if exactDirOnly[base] {
			return nil, nil, false
		}
		for _, q := range wildDirOnly {
			if matchName(q, base) {
				return nil, nil, false
			}
		}
		top, _, _ := strings.Cut(p, "/")
		for _, inc := range byTop[top] {
			if inc.isDir && strings.HasPrefix(p, inc.prefix) || !inc.isDir && p == inc.name {
				used[inc.name] = true
			}
		}
	}
	for _, inc := range s.Include {
		name := strings.TrimSuffix(inc, "/")
		if !used[name] {
			continue
		}
		nested := false
		for other := range used {
			if strings.HasPrefix(name, other+"/") {
				nested = true // restic reaches it through the outer folder
			}
		}
		if !nested {
			targets = append(targets, name)
		}
	}
	return targets, excludes, true
}
