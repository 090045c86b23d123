// Package history reads the history graph that instance-sync's snapshots
// form through their tags, and decides what a pull must do. Everything here
// is pure: no files, no network, no restic.
package history

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Tag prefixes and values written on every snapshot.
const (
	TagMarker  = "isync:v1"
	KindPush   = "push"
	KindSafety = "safety"
	tagKind    = "kind:"
	tagBase    = "base:"
	tagLabel   = "label:"
	tagAttempt = "attempt:"
	// tagSupersedes names a head a push replaced without its changes (the
	// player kept this computer's files over it).
	tagSupersedes = "supersedes:"
	// tagMerges names a head a push carries the changes of, merged per
	// world with this computer's (DESIGN.md "Per-world merge").
	tagMerges = "merges:"
)

// Snapshot is what the sync needs to know about one snapshot. It is cached
// in state so each snapshot is decrypted once per machine.
type Snapshot struct {
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Host  string    `json:"host"`
	Label string    `json:"label,omitempty"`
	Kind  string    `json:"kind"` // push, safety, or "" for snapshots not written by us
	Bases []string  `json:"bases,omitempty"`
	Files int64     `json:"files,omitempty"`
	Bytes int64     `json:"bytes,omitempty"`
	// Attempt is the random id of the push that wrote it, so a push killed
	// after restic saved the snapshot but before state recorded it can
	// find its snapshot again.
	Attempt string `json:"attempt,omitempty"`
	// Supersedes are the heads this snapshot replaced without their
	// changes: the player chose to keep this computer's files over them.
	Supersedes []string `json:"supersedes,omitempty"`
	// Merges are the heads this snapshot merged: their changes are in it,
	// beside its first base's.
	Merges []string `json:"merges,omitempty"`
	// Original is the id the snapshot had when it was written, when restic
	// wrote it again since under this id (restic tag: the server's
	// retention re-tags snapshots). Bases naming the original mean this one.
	Original string `json:"original,omitempty"`
	// Scope is the maker's effective scope, nil for snapshots that do not
	// record it (made by earlier builds).
	Scope *Scope `json:"scope,omitempty"`
}

// Tags returns the restic tags for a snapshot of kind with the given bases,
// label and attempt id. restic splits tags at commas, so the label loses
// them.
func Tags(kind string, bases []string, label, attempt string) []string {
	tags := []string{TagMarker, tagKind + kind}
	for _, b := range bases {
		tags = append(tags, tagBase+b)
	}
	if label != "" {
		tags = append(tags, tagLabel+strings.ReplaceAll(label, ",", " "))
	}
	if attempt != "" {
		tags = append(tags, tagAttempt+attempt)
	}
	return tags
}

// SupersedesTags are the tags of a push that replaces heads without their
// changes (appended to Tags' list).
func SupersedesTags(ids []string) []string {
	var tags []string
	for _, id := range ids {
		tags = append(tags, tagSupersedes+id)
	}
	return tags
}

// MergesTags are the tags of a push that merged heads (appended to Tags'
// list).
func MergesTags(ids []string) []string {
	var tags []string
	for _, id := range ids {
		tags = append(tags, tagMerges+id)
	}
	return tags
}

// FromTags fills the graph fields of s from restic tags. Snapshots without
// our marker get Kind "" and never become heads.
func FromTags(s Snapshot, tags []string) Snapshot {
	ours := false
	for _, t := range tags {
		switch {
		case t == TagMarker:
			ours = true
		case strings.HasPrefix(t, tagKind):
			s.Kind = strings.TrimPrefix(t, tagKind)
		case strings.HasPrefix(t, tagBase):
			s.Bases = append(s.Bases, strings.TrimPrefix(t, tagBase))
		case strings.HasPrefix(t, tagLabel):
			s.Label = strings.TrimPrefix(t, tagLabel)
		case strings.HasPrefix(t, tagAttempt):
			s.Attempt = strings.TrimPrefix(t, tagAttempt)
		case strings.HasPrefix(t, tagSupersedes):
			s.Supersedes = append(s.Supersedes, strings.TrimPrefix(t, tagSupersedes))
		case strings.HasPrefix(t, tagMerges):
			s.Merges = append(s.Merges, strings.TrimPrefix(t, tagMerges))
		case strings.HasPrefix(t, tagScope):
			s.Scope, _ = parseScopeTag(t)
		}
	}
	if !ours {
		s.Kind = ""
	}
	return s
}

// Graph is the set of snapshots present in the repository.
type Graph map[string]Snapshot

// Resolved returns g with restic's re-tagging undone: each base and
// supersedes naming the id a snapshot had before restic wrote it again
// (its Original) names its id now. Nothing else changes.
func (g Graph) Resolved() Graph {
	alias := g.aliases()
	if len(alias) == 0 {
		return g
	}
	out := make(Graph, len(g))
	for id, s := range g {
		s.Bases = resolveAll(alias, s.Bases)
		s.Supersedes = resolveAll(alias, s.Supersedes)
		s.Merges = resolveAll(alias, s.Merges)
		out[id] = s
	}
	return out
}

// Canonical is the id now of the snapshot that was written as id: id
// itself, or the re-tagged snapshot whose Original it is.
func (g Graph) Canonical(id string) string {
	if _, ok := g[id]; ok || id == "" {
		return id
	}
	for now, s := range g {
		if s.Original == id {
			return now
		}
	}
	return id
}

func (g Graph) aliases() map[string]string {
	var alias map[string]string
	for id, s := range g {
		if s.Original != "" && s.Original != id {
			if alias == nil {
				alias = map[string]string{}
			}
			alias[s.Original] = id
		}
	}
	return alias
}

func resolveAll(alias map[string]string, ids []string) []string {
	if len(ids) == 0 {
		return ids
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		if now, ok := alias[id]; ok {
			id = now
		}
		out[i] = id
	}
	return out
}

// Heads returns the push snapshots that no push snapshot names as a base,
// newest first. Safety snapshots are side branches: they never hide a head.
func (g Graph) Heads() []Snapshot {
	named := map[string]bool{}
	for _, s := range g {
		if s.Kind != KindPush {
			continue
		}
		for _, b := range s.Bases {
			named[b] = true
		}
	}
	var heads []Snapshot
	for id, s := range g {
		if s.Kind == KindPush && !named[id] {
			heads = append(heads, s)
		}
	}
	SortNewestFirst(heads)
	return heads
}

// SortNewestFirst orders snapshots by time, newest first, ties by id.
func SortNewestFirst(s []Snapshot) {
	sort.Slice(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.After(s[j].Time)
		}
		return s[i].ID < s[j].ID
	})
}

// Descends reports whether id has ancestor among its bases, transitively.
// An empty ancestor means "no history yet", from which everything descends.
func (g Graph) Descends(id, ancestor string) bool {
	if ancestor == "" || id == ancestor {
		return true
	}
	seen := map[string]bool{}
	stack := []string{id}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[cur] {
			continue
		}
		seen[cur] = true
		for _, b := range g[cur].Bases {
			if b == ancestor {
				return true
			}
			stack = append(stack, b)
		}
	}
	return false
}

// SupersededBy finds where last's changes were dropped on the way to
// target: it follows target's content back (each snapshot's first base it
// does not supersede) and returns the snapshot that superseded last. ok is
// false when target carries last's changes. A push without supersedes
// tags (older builds) named the heads it replaced after its own base; a
// merge (merges tags) names heads it carries.
func (g Graph) SupersededBy(target, last string) (by Snapshot, ok bool) {
	seen := map[string]bool{}
	for cur := target; cur != "" && cur != last && !seen[cur]; {
		seen[cur] = true
		sn, found := g[cur]
		if !found {
			return Snapshot{}, false
		}
		replaced := sn.Supersedes
		if len(replaced) == 0 && len(sn.Merges) == 0 && len(sn.Bases) > 1 {
			replaced = sn.Bases[1:]
		}
		next := ""
		for _, b := range sn.Bases {
			if slices.Contains(replaced, b) {
				if b == last {
					return sn, true
				}
				continue
			}
			if next == "" {
				next = b
			}
		}
		cur = next
	}
	return Snapshot{}, false
}

// Resolve finds the snapshot whose id starts with prefix. ok is false when
// none or several match.
func (g Graph) Resolve(prefix string) (Snapshot, bool) {
	var found Snapshot
	n := 0
	for id, s := range g {
		if strings.HasPrefix(id, prefix) {
			found = s
			n++
		}
	}
	return found, n == 1
}
