package history

import "testing"

// TestSupersededBy: a fast-forward target may carry this computer's last
// version, or have replaced it ("keep local" on another computer), with or
// without the supersedes tag, and before or after later pushes.
func TestSupersededBy(t *testing.T) {
	push := func(id string, bases []string, supersedes ...string) Snapshot {
		return Snapshot{ID: id, Kind: KindPush, Host: "h-" + id, Bases: bases, Supersedes: supersedes}
	}
	g := Graph{
		"x":    push("x", nil),
		"own":  push("own", nil),
		"next": push("next", []string{"x"}),              // carries x
		"keep": push("keep", []string{"own", "x"}, "x"),  // kept own over x
		"old":  push("old", []string{"own", "x"}),        // the same, by an older build
		"on":   push("on", []string{"keep"}),             // a later push on top
		"new":  push("new", []string{"x"}, "x"),          // never synced, kept its own over x
		"both": push("both", []string{"next", "y"}, "y"), // carries x, replaced y
		"y":    push("y", nil),
		"loop": push("loop", []string{"loop"}),
		// merged x per world: carries x, whatever the first base
		"merge": {ID: "merge", Kind: KindPush, Bases: []string{"own", "x"}, Merges: []string{"x"}},
	}
	for _, tt := range []struct {
		target, last, by string
	}{
		{"next", "x", ""},
		{"keep", "x", "keep"},
		{"old", "x", "old"},
		{"on", "x", "keep"},
		{"new", "x", "new"},
		{"both", "x", ""},
		{"both", "y", "both"},
		{"keep", "own", ""},
		{"next", "", ""},
		{"loop", "x", ""},
		{"merge", "x", ""},
		{"gone", "x", ""},
	} {
		by, ok := g.SupersededBy(tt.target, tt.last)
		if ok != (tt.by != "") || by.ID != tt.by {
			t.Errorf("SupersededBy(%s, %s) = %q, %v; want %q", tt.target, tt.last, by.ID, ok, tt.by)
		}
	}
	tags := append(Tags(KindPush, []string{"own", "x"}, "L", "a1"), SupersedesTags([]string{"x"})...)
	if s := FromTags(Snapshot{ID: "keep"}, tags); len(s.Supersedes) != 1 || s.Supersedes[0] != "x" || len(s.Bases) != 2 {
		t.Fatalf("FromTags(%v) = %+v", tags, s)
	}
	tags = append(Tags(KindPush, []string{"own", "x"}, "L", "a1"), MergesTags([]string{"x"})...)
	if s := FromTags(Snapshot{ID: "merge"}, tags); len(s.Merges) != 1 || s.Merges[0] != "x" || len(s.Supersedes) != 0 {
		t.Fatalf("FromTags(%v) = %+v", tags, s)
	}
}
