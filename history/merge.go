package history

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// Side is where a version comes from: a cloud head, or this computer.
type Side struct {
	Head string // the head snapshot's id; "" for this computer
	Host string // the computer that made the head, for messages and renamed copies
}

// Local reports whether the side is this computer.
func (s Side) Local() bool { return s.Head == "" }

// Name is how messages call the side.
func (s Side) Name() string {
	switch {
	case s.Local():
		return "this computer"
	case s.Host == "":
		return "the cloud"
	}
	return s.Host
}

// ChangesBetween lists what changed from one manifest to another, sorted
// by path: e.g. the base snapshot's tree and a head's, read in-process.
func ChangesBetween(from, to scope.Manifest) []FileChange {
	var out []FileChange
	for p, e := range to {
		if f, ok := from[p]; !ok || f.Size != e.Size || f.MTime != e.MTime {
			out = append(out, FileChange{Path: p, Size: e.Size, MTime: e.MTime})
		}
	}
	for p := range from {
		if _, ok := to[p]; !ok {
			out = append(out, FileChange{Path: p, Deleted: true})
		}
	}
	slices.SortFunc(out, func(a, b FileChange) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// FileChange is one file a cloud head changed since the base (the last
// sync): the shape of restic's diff, or of comparing the two snapshots'
// trees.
type FileChange struct {
	Path    string // slash-separated, relative to the pack folder
	Deleted bool
	Size    int64
	MTime   int64 // nanoseconds since the Unix epoch
}

// HeadChanges is a cloud head and what it changed since the base.
type HeadChanges struct {
	Side    Side
	Changes []FileChange
}

// MergeInput is everything the merge looks at.
type MergeInput struct {
	Base  scope.Manifest // the files of the last sync
	Local scope.Manifest // this computer's files now
	Heads []HeadChanges  // the cloud heads to merge, in order, each with its changes since Base
	Rules Rules          // scope.json's rule overrides (nil: the defaults)
}

// Pick is a unit whose version on one side is the merge's.
type Pick struct {
	Unit Unit
	From Side
}

// Rename is a file of an additive entry changed on both sides: this
// computer's copy keeps the name; From's copy is written as To.
type Rename struct {
	Path string
	To   string
	From Side
}

// Deletion is a unit deleted on one side and untouched on the other: it is
// deleted (it stays in history). By a cloud head: delete it here; by this
// computer: the next push records it.
type Deletion struct {
	Unit Unit
	By   Side
}

// Version is what one side holds of a colliding unit.
type Version struct {
	Side     Side
	Deleted  bool
	Files    int
	Bytes    int64
	Modified time.Time // the newest file's modification time
}

// Collision is an atomic unit (a world) changed on several sides: the
// player chooses which version stays.
type Collision struct {
	Unit     Unit
	Versions []Version
}

// MergePlan is the merge's decision. Each list is sorted by unit path.
type MergePlan struct {
	// Take: units changed only in the cloud; restore From's version (an
	// atomic unit whole: its files as in that head, and no other).
	Take []Pick
	// Keep: units changed only here; they stay, the next push uploads them.
	Keep []Pick
	// Newest: per-file units changed on both sides: From holds the version
	// that stays (the newer one, or the one still there when the other
	// side deleted the file). Restore it when From is a cloud head.
	Newest []Pick
	// Renames: additive files changed on both sides; both stay.
	Renames []Rename
	// Deletions: deleted on one side, untouched on the other.
	Deletions []Deletion
	// Collisions: atomic units changed on several sides, and only those.
	Collisions []Collision
}

// Conflict reports whether the player must choose anything.
func (p MergePlan) Conflict() bool { return len(p.Collisions) > 0 }

type outcome int

const (
	keep outcome = iota
	take
	newest
	deletion
	collision
	// renamed: an additive copy written under a new name (listed in
	// Renames), a unit of its own for the heads merged after.
	renamed
)

// merger holds the merge in progress: cur is the merged files so far,
// starting from this computer's.
type merger struct {
	base    scope.Manifest
	cur     scope.Manifest
	rules   Rules
	origin  map[string]Side // unit path → side whose version cur holds
	outcome map[string]outcome
	units   map[string]Unit
	clashes map[string][]Version
	renames []Rename
}

// Merge decides a per-unit merge of this computer's changes with the cloud
// heads' (DESIGN.md "Per-world merge"). Heads merge pairwise in order: the
// first with this computer's files, the next with that result, and so on.
// A unit changed on one side only is taken from there; the same world
// changed on two sides is a collision; per-file units changed on both
// sides follow their rule (newest wins, or additive: both kept).
func Merge(in MergeInput) (MergePlan, error) {
	if err := in.Rules.Check(); err != nil {
		return MergePlan{}, err
	}
	m := merger{
		base: in.Base, cur: maps.Clone(in.Local), rules: in.Rules,
		origin: map[string]Side{}, outcome: map[string]outcome{},
		units: map[string]Unit{}, clashes: map[string][]Version{},
	}
	if m.cur == nil {
		m.cur = scope.Manifest{}
	}
	for p, e := range in.Local {
		// Sizes and modification times, as for a head's side: its tree
		// carries no permission bits here.
		if b, ok := in.Base[p]; !ok || b.Size != e.Size || b.MTime != e.MTime {
			m.touch(p, Side{})
		}
	}
	for p := range in.Base {
		if _, ok := in.Local[p]; !ok {
			m.touch(p, Side{})
		}
	}
	for u := range m.units {
		m.outcome[u] = keep
		if m.deleted(m.cur, m.units[u]) {
			m.outcome[u] = deletion
		}
	}
	for _, h := range in.Heads {
		if err := m.merge(h); err != nil {
			return MergePlan{}, err
		}
	}
	return m.plan(), nil
}

// touch records that side changed p's unit.
func (m *merger) touch(p string, s Side) Unit {
	u := m.rules.UnitOf(p)
	if _, ok := m.units[u.Path]; !ok {
		m.units[u.Path] = u
		m.origin[u.Path] = s
	}
	return u
}

// merge merges one head into cur.
func (m *merger) merge(h HeadChanges) error {
	head := maps.Clone(m.base)
	if head == nil {
		head = scope.Manifest{}
	}
	var changed []Unit
	seen := map[string]bool{}
	for _, c := range h.Changes {
		if !validPath(c.Path) {
			return fmt.Errorf("snapshot %s from %s lists %q: not a path inside the pack folder; the snapshot is damaged, push from a computer that has this world to replace it", short(h.Side.Head), h.Side.Name(), c.Path)
		}
		if c.Deleted {
			delete(head, c.Path)
		} else {
			head[c.Path] = scope.Entry{Size: c.Size, MTime: c.MTime}
		}
		u := m.rules.UnitOf(c.Path)
		if !seen[u.Path] {
			seen[u.Path] = true
			changed = append(changed, u)
		}
	}
	slices.SortFunc(changed, func(a, b Unit) int { return strings.Compare(a.Path, b.Path) })
	for _, u := range changed {
		if !m.changed(head, u) {
			continue
		}
		_, curChanged := m.units[u.Path]
		switch {
		case m.outcome[u.Path] == collision && curChanged:
			if !m.sameAsAny(head, u) {
				m.clashes[u.Path] = append(m.clashes[u.Path], m.version(head, u, h.Side))
			}
		case !curChanged:
			m.units[u.Path] = u
			m.outcome[u.Path] = take
			if m.deleted(head, u) {
				m.outcome[u.Path] = deletion
			}
			m.adopt(head, u, h.Side)
		case m.same(m.cur, head, u):
			// Both sides made the same change.
		case u.Atomic():
			m.outcome[u.Path] = collision
			m.clashes[u.Path] = []Version{m.version(m.cur, u, m.origin[u.Path]), m.version(head, u, h.Side)}
		default:
			m.pickFile(head, u, h.Side)
		}
	}
	return nil
}

// pickFile decides a per-file unit both sides changed.
func (m *merger) pickFile(head scope.Manifest, u Unit, s Side) {
	ce, inCur := m.cur[u.Path]
	he, inHead := head[u.Path]
	switch {
	case !inHead:
		// Deleted in the cloud, changed here: the change stays.
		m.outcome[u.Path] = newest
	case !inCur:
		m.outcome[u.Path] = newest
		m.adopt(head, u, s)
	case u.Rule == RuleAdditive:
		to := m.freeName(head, u.Path, s)
		m.cur[to] = he
		m.units[to], m.origin[to], m.outcome[to] = Unit{Path: to, Rule: RuleAdditive}, s, renamed
		m.renames = append(m.renames, Rename{Path: u.Path, To: to, From: s})
	default:
		m.outcome[u.Path] = newest
		if he.MTime > ce.MTime {
			m.adopt(head, u, s)
		}
	}
}

// adopt makes cur hold head's version of u.
func (m *merger) adopt(head scope.Manifest, u Unit, s Side) {
	for p := range m.cur {
		if m.in(p, u) {
			delete(m.cur, p)
		}
	}
	for p, e := range head {
		if m.in(p, u) {
			m.cur[p] = e
		}
	}
	m.origin[u.Path] = s
}

// freeName is p renamed for side s's copy ("a (laptop).png"), numbered
// when that name is taken too.
func (m *merger) freeName(head scope.Manifest, p string, s Side) string {
	dir, file := path.Split(p)
	ext := path.Ext(file)
	if ext == file {
		ext = ""
	}
	stem := strings.TrimSuffix(file, ext)
	host := safeName(s.Name())
	for n := 1; ; n++ {
		tag := host
		if n > 1 {
			tag = fmt.Sprintf("%s %d", host, n)
		}
		to := dir + stem + " (" + tag + ")" + ext
		_, inCur := m.cur[to]
		_, inHead := head[to]
		_, inBase := m.base[to]
		if !inCur && !inHead && !inBase {
			return to
		}
	}
}

// safeName replaces what no file name may hold on any system.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 32 || strings.ContainsRune(`<>:"/\|?*`, r) {
			return '_'
		}
		return r
	}, s)
}

// in reports whether file p belongs to unit u.
func (m *merger) in(p string, u Unit) bool {
	if strings.HasSuffix(u.Path, "/") {
		return strings.HasPrefix(p, u.Path)
	}
	return p == u.Path
}

// files returns the entries of u's files in man.
func (m *merger) files(man scope.Manifest, u Unit) map[string]scope.Entry {
	out := map[string]scope.Entry{}
	if !strings.HasSuffix(u.Path, "/") {
		if e, ok := man[u.Path]; ok {
			out[u.Path] = e
		}
		return out
	}
	for p, e := range man {
		if strings.HasPrefix(p, u.Path) {
			out[p] = e
		}
	}
	return out
}

// same reports whether a and b hold the same version of u (sizes and
// modification times: a head's tree carries no permission bits here).
func (m *merger) same(a, b scope.Manifest, u Unit) bool {
	fa, fb := m.files(a, u), m.files(b, u)
	if len(fa) != len(fb) {
		return false
	}
	for p, ea := range fa {
		eb, ok := fb[p]
		if !ok || ea.Size != eb.Size || ea.MTime != eb.MTime {
			return false
		}
	}
	return true
}

// changed reports whether man's version of u differs from the base's.
func (m *merger) changed(man scope.Manifest, u Unit) bool { return !m.same(m.base, man, u) }

// deleted reports whether u had files at the base and has none in man.
func (m *merger) deleted(man scope.Manifest, u Unit) bool {
	return len(m.files(man, u)) == 0 && len(m.files(m.base, u)) > 0
}

// sameAsAny reports whether head's version of a colliding unit is one of
// the versions already in the collision.
func (m *merger) sameAsAny(head scope.Manifest, u Unit) bool {
	v := m.version(head, u, Side{})
	for _, w := range m.clashes[u.Path] {
		w.Side = Side{}
		if w == v {
			return true
		}
	}
	return false
}

// version sums up man's version of u for the player.
func (m *merger) version(man scope.Manifest, u Unit, s Side) Version {
	v := Version{Side: s, Deleted: m.deleted(man, u)}
	var latest int64
	for _, e := range m.files(man, u) {
		v.Files++
		v.Bytes += e.Size
		latest = max(latest, e.MTime)
	}
	if v.Files > 0 {
		v.Modified = time.Unix(0, latest).UTC()
	}
	return v
}

func (m *merger) plan() MergePlan {
	var p MergePlan
	for _, path := range slices.Sorted(maps.Keys(m.outcome)) {
		u, from := m.units[path], m.origin[path]
		switch m.outcome[path] {
		case keep:
			p.Keep = append(p.Keep, Pick{Unit: u, From: from})
		case take:
			p.Take = append(p.Take, Pick{Unit: u, From: from})
		case newest:
			p.Newest = append(p.Newest, Pick{Unit: u, From: from})
		case deletion:
			p.Deletions = append(p.Deletions, Deletion{Unit: u, By: from})
		case collision:
			p.Collisions = append(p.Collisions, Collision{Unit: u, Versions: m.clashes[path]})
		}
	}
	p.Renames = m.renames
	slices.SortFunc(p.Renames, func(a, b Rename) int { return strings.Compare(a.To, b.To) })
	return p
}

// Summary is the one line that says what the merge did, e.g. "took World
// Two from laptop; kept Skyblock from this computer". Worlds are named,
// files counted.
func (p MergePlan) Summary() string {
	var parts []string
	group := func(verb, prep string, picks []Pick) {
		var order []string
		byFrom := map[string][]Unit{}
		for _, pk := range picks {
			n := pk.From.Name()
			if _, ok := byFrom[n]; !ok {
				order = append(order, n)
			}
			byFrom[n] = append(byFrom[n], pk.Unit)
		}
		slices.Sort(order)
		for _, n := range order {
			parts = append(parts, verb+" "+listUnits(byFrom[n])+" "+prep+" "+n)
		}
	}
	var cloud, local []Pick
	for _, pk := range append(append([]Pick(nil), p.Take...), p.Newest...) {
		if pk.From.Local() {
			local = append(local, pk)
		} else {
			cloud = append(cloud, pk)
		}
	}
	group("took", "from", cloud)
	group("kept", "from", append(append([]Pick(nil), p.Keep...), local...))
	var dels []Pick
	for _, d := range p.Deletions {
		dels = append(dels, Pick{Unit: d.Unit, From: d.By})
	}
	group("deleted", "as on", dels)
	if n := len(p.Renames); n > 0 {
		parts = append(parts, fmt.Sprintf("kept both copies of %s changed on both sides", plural(n, "file")))
	}
	for _, c := range p.Collisions {
		var sides []string
		for _, v := range c.Versions {
			sides = append(sides, v.Side.Name())
		}
		parts = append(parts, c.Unit.Name()+" changed on "+joinAnd(sides))
	}
	if len(parts) == 0 {
		return "nothing to merge"
	}
	return strings.Join(parts, "; ")
}

// listUnits names the atomic units and counts the files.
func listUnits(us []Unit) string {
	var names []string
	files := 0
	for _, u := range us {
		if u.Atomic() {
			names = append(names, u.Name())
		} else {
			files++
		}
	}
	slices.Sort(names)
	if files > 0 {
		if len(names) > 0 {
			names = append(names, plural(files, "other file"))
		} else {
			names = append(names, plural(files, "file"))
		}
	}
	return joinAnd(names)
}

// joinAnd joins "a", "a and b", "a, b and c".
func joinAnd(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// plural is "1 file", "2 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// short is a snapshot id as restic prints it.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
