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
		{"a merge names both sides: one head",
			Input{Last: "b", Graph: graph(snap("a", KindPush, 0), snap("b", KindPush, 1, "a"), snap("c", KindPush, 2, "a"), snap("m", KindPush, 3, "c", "b"))}, FastForward, "m", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Decide(tt.in)
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
