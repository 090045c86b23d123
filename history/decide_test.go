package history

import (
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func snap(id, kind string, minutes int, bases ...string) Snapshot {
	return Snapshot{ID: id, Kind: kind, Time: t0.Add(time.Duration(minutes) * time.Minute), Host: "h-" + id, Bases: bases}
}

// retagged is a push snapshot that restic wrote again (restic tag) under
// id, naming its first id as original.
func retagged(id, original string, minutes int, bases ...string) Snapshot {
	s := snap(id, KindPush, minutes, bases...)
	s.Original = original
	return s
}

func graph(s ...Snapshot) Graph {
	g := Graph{}
	for _, x := range s {
		g[x.ID] = x
	}
	return g
}

func ids(s []Snapshot) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.ID)
	}
	return out
}

func TestDecide(t *testing.T) {
	linear := graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"))
	fork := graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), snap("c", KindPush, 2, "a"))
	tests := []struct {
		name   string
		in     Input
		action Action
		target string
		heads  []string
	}{
		{"empty repository, nothing local", Input{Graph: Graph{}}, Nothing, "", nil},
		{"empty repository, local files (first push pending)", Input{LocalChanged: true, Graph: Graph{}}, LocalAhead, "", nil},
		{"in sync", Input{Last: "b", Graph: linear}, Nothing, "", nil},
		{"local changed, remote not", Input{LocalChanged: true, Last: "b", Graph: linear}, LocalAhead, "", nil},
		{"remote moved, local unchanged: fast-forward", Input{Last: "a", Graph: linear}, FastForward, "b", nil},
		{"remote moved two steps: fast-forward to the head",
			Input{Last: "a", Graph: graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), snap("c", KindPush, 2, "b"))}, FastForward, "c", nil},
		{"both changed: conflict", Input{LocalChanged: true, Last: "a", Graph: linear}, Conflict, "", []string{"b"}},
		{"first sync here, empty local: fast-forward", Input{Graph: linear}, FastForward, "b", nil},
		{"first sync here with local worlds: conflict", Input{LocalChanged: true, Graph: linear}, Conflict, "", []string{"b"}},
		{"several heads, local unchanged: conflict, newest first", Input{Last: "a", Graph: fork}, Conflict, "", []string{"c", "b"}},
		{"several heads, local changed", Input{LocalChanged: true, Last: "a", Graph: fork}, Conflict, "", []string{"c", "b"}},
		{"our head and a forked one: conflict", Input{Last: "b", Graph: fork}, Conflict, "", []string{"c"}},
		{"skipped heads are not news", Input{LocalChanged: true, Last: "a", Skipped: []string{"b"}, Graph: linear}, LocalAhead, "", nil},
		{"skipped one of two heads", Input{Last: "b", Skipped: []string{"c"}, Graph: fork}, Nothing, "", nil},
		{"interrupted restore resumes", Input{LocalChanged: true, Last: "a", Restoring: "b", Graph: linear}, Resume, "b", nil},
		{"interrupted restore of a vanished snapshot is ignored", Input{Last: "b", Restoring: "zz", Graph: linear}, Nothing, "", nil},
		{"safety snapshots never become heads",
			Input{Last: "b", Graph: graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), snap("s", KindSafety, 2, "b"))}, Nothing, "", nil},
		{"foreign snapshots are ignored", Input{Last: "b", Graph: graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), snap("x", "", 5))}, Nothing, "", nil},
		{"head not descending from ours (history lost): conflict",
			Input{Last: "a", Graph: graph(snap("a", KindPush, 0), snap("z", KindPush, 3, "gone"))}, Conflict, "", []string{"z"}},
		// Retention removed snapshots between this computer's last sync and
		// the head: nothing changed here, so nothing is lost by taking it.
		{"last sync pruned, local unchanged: fast-forward (safety first)",
			Input{Last: "a", Graph: graph(snap("y", KindPush, 8, "x"), snap("z", KindPush, 9, "y"))}, FastForward, "z", nil},
		{"last sync pruned, the head still names it, local unchanged: fast-forward (safety first)",
			Input{Last: "a", Graph: graph(snap("b", KindPush, 1, "a"))}, FastForward, "b", nil},
		{"last sync pruned, local changed: conflict",
			Input{LocalChanged: true, Last: "a", Graph: graph(snap("y", KindPush, 8, "x"), snap("z", KindPush, 9, "y"))}, Conflict, "", []string{"z"}},
		{"last sync pruned, two heads: conflict",
			Input{Last: "a", Graph: graph(snap("y", KindPush, 8, "x"), snap("z", KindPush, 9, "x"))}, Conflict, "", []string{"z", "y"}},
		{"last sync kept, the head cut off from it, local unchanged: fast-forward",
			Input{Last: "a", Skipped: []string{"b"}, Graph: graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), snap("z", KindPush, 9, "gone"))}, FastForward, "z", nil},
		// Retention re-tagged a snapshot: restic wrote it again under a new
		// id that names the old one as its original.
		{"re-tagged last sync, nothing new", Input{Last: "a", Graph: graph(retagged("a2", "a", 0), snap("b", KindPush, 1, "a"))}, FastForward, "b", nil},
		{"re-tagged last sync is the head", Input{Last: "a", Graph: graph(retagged("a2", "a", 0))}, Nothing, "", nil},
		{"a base naming a re-tagged snapshot",
			Input{Last: "b", Graph: graph(retagged("a2", "a", 0), snap("b", KindPush, 1, "a"), snap("c", KindPush, 2, "a"))}, Conflict, "", []string{"c"}},
		{"re-tagged skipped head", Input{Last: "b", Skipped: []string{"c"}, Graph: graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), retagged("c2", "c", 2, "a"))}, Nothing, "", nil},
		{"re-tagged interrupted restore resumes", Input{Last: "a", Restoring: "b", Graph: graph(snap("a", KindPush, 0), retagged("b2", "b", 1, "a"))}, Resume, "b2", nil},
		{"a merge names both sides: one head",
			Input{Last: "b", Graph: graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), snap("c", KindPush, 2, "a"), snap("m", KindPush, 3, "c", "b"))}, FastForward, "m", nil},
	}
	safety := map[string]bool{
		"last sync pruned, local unchanged: fast-forward (safety first)":                          true,
		"last sync pruned, the head still names it, local unchanged: fast-forward (safety first)": true,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Decide(tt.in)
			if p.Safety != safety[tt.name] {
				t.Fatalf("Decide = %v with Safety %v, want %v", p.Action, p.Safety, safety[tt.name])
			}
			if p.Action != tt.action || p.Target != tt.target || !reflect.DeepEqual(ids(p.Heads), tt.heads) {
				t.Fatalf("Decide = %v target=%q heads=%v; want %v target=%q heads=%v", p.Action, p.Target, ids(p.Heads), tt.action, tt.target, tt.heads)
			}
			if p.Reason == "" {
				t.Fatal("plan has no reason for the player")
			}
		})
	}
}

func TestTagsRoundTrip(t *testing.T) {
	tags := Tags(KindPush, []string{"aaa", "bbb"}, "My Pack, modded", "n1")
	want := []string{"isync:v1", "kind:push", "base:aaa", "base:bbb", "label:My Pack  modded", "attempt:n1"}
	if !reflect.DeepEqual(tags, want) {
		t.Fatalf("Tags = %q, want %q", tags, want)
	}
	s := FromTags(Snapshot{ID: "x"}, tags)
	if s.Kind != KindPush || !reflect.DeepEqual(s.Bases, []string{"aaa", "bbb"}) || s.Label != "My Pack  modded" || s.Attempt != "n1" {
		t.Fatalf("FromTags = %+v", s)
	}
	if s := FromTags(Snapshot{ID: "y"}, []string{"kind:push"}); s.Kind != "" {
		t.Fatalf("snapshot without marker got kind %q", s.Kind)
	}
}

func TestResolve(t *testing.T) {
	g := graph(snap("abc1", KindPush, 0), snap("abc2", KindPush, 1), snap("def", KindPush, 2))
	if s, ok := g.Resolve("def"); !ok || s.ID != "def" {
		t.Fatalf("Resolve(def) = %v %v", s.ID, ok)
	}
	if _, ok := g.Resolve("abc"); ok {
		t.Fatal("ambiguous prefix resolved")
	}
	if _, ok := g.Resolve("zzz"); ok {
		t.Fatal("unknown prefix resolved")
	}
}
