package history

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

var (
	here    = Side{}
	laptop  = Side{Head: "1aa00000laptop", Host: "laptop"}
	desktop = Side{Head: "2bb00000desktop", Host: "desktop"}
)

// files builds a manifest from "path size mtime" triples.
func files(args ...any) scope.Manifest {
	m := scope.Manifest{}
	for i := 0; i < len(args); i += 3 {
		m[args[i].(string)] = scope.Entry{Size: int64(args[i+1].(int)), MTime: int64(args[i+2].(int)), Mode: 0o644}
	}
	return m
}

// with is m with the "path size mtime" triples set; a size of -1 deletes.
func with(m scope.Manifest, args ...any) scope.Manifest {
	out := scope.Manifest{}
	for p, e := range m {
		out[p] = e
	}
	for i := 0; i < len(args); i += 3 {
		p, size := args[i].(string), args[i+1].(int)
		if size < 0 {
			delete(out, p)
			continue
		}
		out[p] = scope.Entry{Size: int64(size), MTime: int64(args[i+2].(int)), Mode: 0o644}
	}
	return out
}

// head is a cloud head's changes from "path size mtime" triples; a size
// of -1 is a deletion.
func head(s Side, args ...any) HeadChanges {
	h := HeadChanges{Side: s}
	for i := 0; i < len(args); i += 3 {
		size := args[i+1].(int)
		c := FileChange{Path: args[i].(string), Deleted: size < 0}
		if size >= 0 {
			c.Size, c.MTime = int64(size), int64(args[i+2].(int))
		}
		h.Changes = append(h.Changes, c)
	}
	return h
}

func world(name string) Unit   { return Unit{Path: "saves/" + name + "/", Rule: RuleWorlds} }
func newestFile(p string) Unit { return Unit{Path: p, Rule: RuleNewest} }
func shot(p string) Unit       { return Unit{Path: "screenshots/" + p, Rule: RuleAdditive} }

func at(ns int) time.Time { return time.Unix(0, int64(ns)).UTC() }

// base is the last sync: three worlds, loose files, a map cache, one
// screenshot.
var base = files(
	"saves/Skyblock/level.dat", 10, 100,
	"saves/Skyblock/region/r.0.0.mca", 1000, 100,
	"saves/World Two/level.dat", 20, 100,
	"saves/Old/level.dat", 30, 100,
	"options.txt", 5, 100,
	"servers.dat", 6, 100,
	"hotbar.nbt", 7, 100,
	"journeymap/data/sp/Skyblock/day/0,0.png", 40, 100,
	"screenshots/2026-11-01_10.00.00.png", 50, 100,
)

func TestMerge(t *testing.T) {
	for _, c := range []struct {
		name    string
		local   scope.Manifest
		heads   []HeadChanges
		rules   Rules
		want    MergePlan
		summary string
	}{{
		name:  "nothing changed",
		local: base,
		heads: []HeadChanges{head(laptop)},
		want:  MergePlan{}, summary: "nothing to merge",
	}, {
		name:  "disjoint worlds",
		local: with(base, "saves/Skyblock/level.dat", 11, 200, "saves/Skyblock/region/r.0.0.mca", 1100, 200),
		heads: []HeadChanges{head(laptop, "saves/World Two/level.dat", 21, 300, "saves/World Two/region/r.1.0.mca", 500, 300)},
		want: MergePlan{
			Take: []Pick{{world("World Two"), laptop}},
			Keep: []Pick{{world("Skyblock"), here}},
		},
		summary: "took World Two from laptop; kept Skyblock from this computer",
	}, {
		name:  "a world new on each side",
		local: with(base, "saves/Mine/level.dat", 1, 200),
		heads: []HeadChanges{head(laptop, "saves/Theirs/level.dat", 2, 300)},
		want: MergePlan{
			Take: []Pick{{world("Theirs"), laptop}},
			Keep: []Pick{{world("Mine"), here}},
		},
		summary: "took Theirs from laptop; kept Mine from this computer",
	}, {
		name:  "same world on both sides collides, and only that world",
		local: with(base, "saves/Skyblock/level.dat", 11, 200, "saves/Old/level.dat", 31, 200),
		heads: []HeadChanges{head(laptop,
			"saves/Skyblock/level.dat", 12, 300, "saves/Skyblock/region/r.0.0.mca", 1200, 300,
			"saves/World Two/level.dat", 21, 300)},
		want: MergePlan{
			Take: []Pick{{world("World Two"), laptop}},
			Keep: []Pick{{world("Old"), here}},
			Collisions: []Collision{{Unit: world("Skyblock"), Versions: []Version{
				{Side: here, Files: 2, Bytes: 1011, Modified: at(200)},
				{Side: laptop, Files: 2, Bytes: 1212, Modified: at(300)},
			}}},
		},
		summary: "took World Two from laptop; kept Old from this computer; Skyblock changed on this computer and laptop",
	}, {
		name:  "a file of a world on each side is still one world",
		local: with(base, "saves/Skyblock/level.dat", 11, 200),
		heads: []HeadChanges{head(laptop, "saves/Skyblock/region/r.0.0.mca", 1200, 300)},
		want: MergePlan{Collisions: []Collision{{Unit: world("Skyblock"), Versions: []Version{
			{Side: here, Files: 2, Bytes: 1011, Modified: at(200)},
			{Side: laptop, Files: 2, Bytes: 1210, Modified: at(300)},
		}}}},
		summary: "Skyblock changed on this computer and laptop",
	}, {
		name:  "the same change on both sides is no collision",
		local: with(base, "saves/Skyblock/level.dat", 11, 200),
		heads: []HeadChanges{head(laptop, "saves/Skyblock/level.dat", 11, 200)},
		want:  MergePlan{Keep: []Pick{{world("Skyblock"), here}}},
		// Nothing to restore: the files here are the head's.
		summary: "kept Skyblock from this computer",
	}, {
		name: "permission bits alone are no change here",
		local: func() scope.Manifest {
			m := with(base)
			m["saves/Skyblock/level.dat"] = scope.Entry{Size: 10, MTime: 100, Mode: 0o600}
			return m
		}(),
		heads:   []HeadChanges{head(laptop, "saves/Skyblock/level.dat", 12, 300)},
		want:    MergePlan{Take: []Pick{{world("Skyblock"), laptop}}},
		summary: "took Skyblock from laptop",
	}, {
		name:  "screenshots of the same name on both sides both survive",
		local: with(base, "screenshots/2026-11-30_14.02.11.png", 70, 200, "screenshots/mine.png", 1, 200),
		heads: []HeadChanges{head(laptop, "screenshots/2026-11-30_14.02.11.png", 80, 300, "screenshots/theirs.png", 2, 300)},
		want: MergePlan{
			Take:    []Pick{{shot("theirs.png"), laptop}},
			Keep:    []Pick{{shot("2026-11-30_14.02.11.png"), here}, {shot("mine.png"), here}},
			Renames: []Rename{{Path: "screenshots/2026-11-30_14.02.11.png", To: "screenshots/2026-11-30_14.02.11 (laptop).png", From: laptop}},
		},
		summary: "took 1 file from laptop; kept 2 files from this computer; kept both copies of 1 file changed on both sides",
	}, {
		name: "a renamed copy never replaces a file already there",
		local: with(base, "screenshots/2026-11-01_10.00.00.png", 51, 200,
			"screenshots/2026-11-01_10.00.00 (laptop).png", 9, 200,
			"schematics/house", 3, 200),
		heads: []HeadChanges{head(laptop, "screenshots/2026-11-01_10.00.00.png", 52, 300,
			"schematics/house", 4, 300)},
		want: MergePlan{
			Keep: []Pick{
				{Unit{"schematics/house", RuleAdditive}, here},
				{shot("2026-11-01_10.00.00 (laptop).png"), here},
				{shot("2026-11-01_10.00.00.png"), here},
			},
			Renames: []Rename{
				{Path: "schematics/house", To: "schematics/house (laptop)", From: laptop},
				{Path: "screenshots/2026-11-01_10.00.00.png", To: "screenshots/2026-11-01_10.00.00 (laptop 2).png", From: laptop},
			},
		},
		summary: "kept 3 files from this computer; kept both copies of 2 files changed on both sides",
	}, {
		name: "loose files and map caches: the newer wins",
		local: with(base, "options.txt", 8, 300, "servers.dat", 9, 200, "hotbar.nbt", 10, 250,
			"journeymap/data/sp/Skyblock/day/0,0.png", 41, 200, "XaeroWorldMap/Sky/0_0.zip", 60, 400),
		heads: []HeadChanges{head(laptop, "options.txt", 18, 200, "servers.dat", 19, 300, "hotbar.nbt", 20, 250,
			"journeymap/data/sp/Skyblock/day/0,0.png", 42, 300, "XaeroWorldMap/Sky/0_0.zip", 61, 300)},
		want: MergePlan{Newest: []Pick{
			{newestFile("XaeroWorldMap/Sky/0_0.zip"), here},
			// A tie keeps this computer's.
			{newestFile("hotbar.nbt"), here},
			{newestFile("journeymap/data/sp/Skyblock/day/0,0.png"), laptop},
			{newestFile("options.txt"), here},
			{newestFile("servers.dat"), laptop},
		}},
		summary: "took 2 files from laptop; kept 3 files from this computer",
	}, {
		name:  "deleted in the cloud, untouched here: deleted",
		local: base,
		heads: []HeadChanges{head(laptop, "saves/Old/level.dat", -1, 0, "servers.dat", -1, 0)},
		want: MergePlan{Deletions: []Deletion{
			{world("Old"), laptop},
			{newestFile("servers.dat"), laptop},
		}},
		summary: "deleted Old and 1 other file as on laptop",
	}, {
		name:  "deleted here, untouched in the cloud: deleted",
		local: with(base, "saves/Old/level.dat", -1, 0, "hotbar.nbt", -1, 0),
		heads: []HeadChanges{head(laptop, "saves/World Two/level.dat", 21, 300)},
		want: MergePlan{
			Take: []Pick{{world("World Two"), laptop}},
			Deletions: []Deletion{
				{newestFile("hotbar.nbt"), here},
				{world("Old"), here},
			},
		},
		summary: "took World Two from laptop; deleted Old and 1 other file as on this computer",
	}, {
		name:  "deleted on one side, played on the other: a collision",
		local: with(base, "saves/Old/level.dat", -1, 0, "saves/World Two/level.dat", 22, 200),
		heads: []HeadChanges{head(laptop, "saves/Old/level.dat", 31, 300, "saves/World Two/level.dat", -1, 0)},
		want: MergePlan{Collisions: []Collision{
			{Unit: world("Old"), Versions: []Version{{Side: here, Deleted: true}, {Side: laptop, Files: 1, Bytes: 31, Modified: at(300)}}},
			{Unit: world("World Two"), Versions: []Version{{Side: here, Files: 1, Bytes: 22, Modified: at(200)}, {Side: laptop, Deleted: true}}},
		}},
		summary: "Old changed on this computer and laptop; World Two changed on this computer and laptop",
	}, {
		name:  "a file deleted on one side and changed on the other: the change stays",
		local: with(base, "options.txt", -1, 0, "servers.dat", 9, 200, "screenshots/2026-11-01_10.00.00.png", -1, 0),
		heads: []HeadChanges{head(laptop, "options.txt", 15, 50, "servers.dat", -1, 0, "screenshots/2026-11-01_10.00.00.png", 55, 300)},
		want: MergePlan{Newest: []Pick{
			{newestFile("options.txt"), laptop},
			{shot("2026-11-01_10.00.00.png"), laptop},
			{newestFile("servers.dat"), here},
		}},
		summary: "took 2 files from laptop; kept 1 file from this computer",
	}, {
		name:    "deleted on both sides",
		local:   with(base, "saves/Old/level.dat", -1, 0),
		heads:   []HeadChanges{head(laptop, "saves/Old/level.dat", -1, 0)},
		want:    MergePlan{Deletions: []Deletion{{world("Old"), here}}},
		summary: "deleted Old as on this computer",
	}, {
		name:  "several heads merge pairwise",
		local: with(base, "saves/Skyblock/level.dat", 11, 200, "options.txt", 8, 200),
		heads: []HeadChanges{
			head(laptop, "saves/World Two/level.dat", 21, 300, "options.txt", 9, 300,
				"screenshots/a.png", 1, 300, "saves/New/level.dat", 1, 300),
			head(desktop, "saves/Old/level.dat", 32, 400, "options.txt", 10, 250,
				"screenshots/a.png", 2, 400, "saves/New/level.dat", 2, 400),
		},
		want: MergePlan{
			Take: []Pick{
				{world("Old"), desktop},
				{world("World Two"), laptop},
				{shot("a.png"), laptop},
			},
			Keep: []Pick{{world("Skyblock"), here}},
			// The laptop's is newer than both.
			Newest:  []Pick{{newestFile("options.txt"), laptop}},
			Renames: []Rename{{Path: "screenshots/a.png", To: "screenshots/a (desktop).png", From: desktop}},
			// Two other computers played the same world: still a collision.
			Collisions: []Collision{{Unit: world("New"), Versions: []Version{
				{Side: laptop, Files: 1, Bytes: 1, Modified: at(300)},
				{Side: desktop, Files: 1, Bytes: 2, Modified: at(400)},
			}}},
		},
		summary: "took Old from desktop; took World Two and 2 other files from laptop; kept Skyblock from this computer; kept both copies of 1 file changed on both sides; New changed on laptop and desktop",
	}, {
		name:  "several heads: a third version joins a collision, a repeated one does not",
		local: with(base, "saves/Skyblock/level.dat", 11, 200),
		heads: []HeadChanges{
			head(laptop, "saves/Skyblock/level.dat", 12, 300),
			head(desktop, "saves/Skyblock/level.dat", 13, 400),
			head(Side{Head: "3cc", Host: "tablet"}, "saves/Skyblock/level.dat", 13, 400),
		},
		want: MergePlan{Collisions: []Collision{{Unit: world("Skyblock"), Versions: []Version{
			{Side: here, Files: 2, Bytes: 1011, Modified: at(200)},
			{Side: laptop, Files: 2, Bytes: 1012, Modified: at(300)},
			{Side: desktop, Files: 2, Bytes: 1013, Modified: at(400)},
		}}}},
		summary: "Skyblock changed on this computer, laptop and desktop",
	}, {
		name:  "a later head's file at a renamed copy's name is renamed too",
		local: with(base, "screenshots/a.png", 1, 200),
		heads: []HeadChanges{
			head(laptop, "screenshots/a.png", 2, 300),
			head(desktop, "screenshots/a (laptop).png", 3, 400),
		},
		want: MergePlan{
			Keep: []Pick{{shot("a.png"), here}},
			Renames: []Rename{
				{Path: "screenshots/a (laptop).png", To: "screenshots/a (laptop) (desktop).png", From: desktop},
				{Path: "screenshots/a.png", To: "screenshots/a (laptop).png", From: laptop},
			},
		},
		summary: "kept 1 file from this computer; kept both copies of 2 files changed on both sides",
	}, {
		name:  "an override makes config one atomic unit",
		rules: Rules{"config/": RuleFolder},
		local: with(base, "config/a.toml", 1, 200),
		heads: []HeadChanges{head(laptop, "config/b.toml", 2, 300)},
		want: MergePlan{Collisions: []Collision{{Unit: Unit{"config/", RuleFolder}, Versions: []Version{
			{Side: here, Files: 1, Bytes: 1, Modified: at(200)},
			{Side: laptop, Files: 1, Bytes: 2, Modified: at(300)},
		}}}},
		summary: "config changed on this computer and laptop",
	}, {
		name:  "without the override config merges per file",
		local: with(base, "config/a.toml", 1, 200),
		heads: []HeadChanges{head(laptop, "config/b.toml", 2, 300)},
		want: MergePlan{
			Take: []Pick{{newestFile("config/b.toml"), laptop}},
			Keep: []Pick{{newestFile("config/a.toml"), here}},
		},
		summary: "took 1 file from laptop; kept 1 file from this computer",
	}} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Merge(MergeInput{Base: base, Local: c.local, Heads: c.heads, Rules: c.rules})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("plan\n got %+v\nwant %+v", got, c.want)
			}
			if s := got.Summary(); s != c.summary {
				t.Errorf("summary\n got %q\nwant %q", s, c.summary)
			}
			if got.Conflict() != (len(c.want.Collisions) > 0) {
				t.Errorf("Conflict() = %v", got.Conflict())
			}
		})
	}
}

// TestMergeBadInput: a path from a snapshot that is not inside the pack
// folder, or a bad rule, is an error naming it.
func TestMergeBadInput(t *testing.T) {
	for _, c := range []struct {
		in   MergeInput
		want string
	}{
		{MergeInput{Base: base, Local: base, Heads: []HeadChanges{head(laptop, "../evil", 1, 1)}},
			`snapshot 1aa00000 from laptop lists "../evil": not a path inside the pack folder`},
		{MergeInput{Base: base, Local: base, Heads: []HeadChanges{head(laptop, "/etc/passwd", 1, 1)}},
			`snapshot 1aa00000 from laptop lists "/etc/passwd": not a path inside the pack folder`},
		{MergeInput{Base: base, Local: base, Rules: Rules{"config/": "mine"}},
			`merge rule of "config/": unknown rule "mine"`},
	} {
		_, err := Merge(c.in)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("error %v, want %q…", err, c.want)
		}
	}
}

// TestMergeLeavesInputs: the merge works on copies.
func TestMergeLeavesInputs(t *testing.T) {
	local := with(base, "screenshots/a.png", 1, 200)
	before := with(local)
	if _, err := Merge(MergeInput{Base: base, Local: local, Heads: []HeadChanges{head(laptop, "screenshots/a.png", 2, 300)}}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, before) {
		t.Errorf("Merge changed its input: %v", local)
	}
}

func TestChangesBetween(t *testing.T) {
	from := files("a", 1, 100, "b", 2, 100, "c", 3, 100)
	to := files("a", 1, 100, "b", 2, 200, "d", 4, 100)
	to["a"] = scope.Entry{Size: 1, MTime: 100, Mode: 0o600} // permission bits alone are no change
	want := []FileChange{{Path: "b", Size: 2, MTime: 200}, {Path: "c", Deleted: true}, {Path: "d", Size: 4, MTime: 100}}
	if got := ChangesBetween(from, to); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// Merging a head given as its changes from the base is merging its files.
	local := with(base, "saves/Skyblock/level.dat", 11, 200)
	headFiles := with(base, "saves/World Two/level.dat", 21, 300, "saves/Old/level.dat", -1, 0)
	p, err := Merge(MergeInput{Base: base, Local: local, Heads: []HeadChanges{{Side: laptop, Changes: ChangesBetween(base, headFiles)}}})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Summary(); s != "took World Two from laptop; kept Skyblock from this computer; deleted Old as on laptop" {
		t.Errorf("summary %q", s)
	}
}
