package engine

import (
	"reflect"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

func TestLeaveOut(t *testing.T) {
	include := []string{"/saves", "/options.txt", "/screenshots", "/schematics"}
	files := []string{
		"saves/Fine/level.dat", "saves/[1.20] Survival/level.dat", "saves/World/level.dat", "saves/world/level.dat",
		"options.txt", "screenshots/ok.png", "screenshots/a:b.png",
		"schematics/deep/x:y.schem", "schematics/deep/ok.schem", "schematics/top.schem",
	}
	tests := []struct {
		units []string
		want  []string
	}{
		{nil, []string{"/saves", "/options.txt", "/screenshots", "/schematics"}}, // unchanged
		{[]string{"saves/World", "saves/world"}, []string{"/options.txt", "/saves/Fine", "/saves/[1.20] Survival", "/schematics", "/screenshots"}},
		{[]string{"screenshots/a:b.png", "schematics/deep/x:y.schem"}, []string{"/options.txt", "/saves", "/schematics/deep/ok.schem", "/schematics/top.schem", "/screenshots/ok.png"}},
		{[]string{"options.txt"}, []string{"/saves", "/schematics", "/screenshots"}},
	}
	for _, tt := range tests {
		if got := leaveOut(include, files, tt.units); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("units %q: includes %q, want %q", tt.units, got, tt.want)
		}
	}
}

// TestIncludePatterns: each path becomes a pattern matching it alone
// (restic's TestIncludeNamesLiterally checks these against restic).
func TestIncludePatterns(t *testing.T) {
	got := includePatterns([]string{"/saves/[1.20] Survival", "/saves/Fine", "/screenshots/a?*.png", "/saves/**"})
	want := []string{"/saves/[[]1.20] Survival", "/saves/Fine", "/screenshots/a[?][*].png", "/saves/[*][*]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patterns %q, want %q", got, want)
	}
}

func TestWithoutHazards(t *testing.T) {
	p := restorePlan{
		want:    map[string]snapItem{"saves/World/level.dat": {}, "saves/Fine/level.dat": {}, "screenshots/a:b.png": {}},
		deletes: []string{"saves/world/old.dat", "saves/Fine/old.dat", "saves/Worldly/x"},
	}
	hs := []scope.Hazard{
		{Unit: "saves/World", Path: "saves/World", Reason: "case"},
		{Unit: "saves/world", Path: "saves/world", Reason: "case"},
		{Unit: "screenshots/a:b.png", Path: "screenshots/a:b.png", Reason: "colon"},
	}
	got := withoutHazards(p, hs)
	if _, ok := got.want["saves/Fine/level.dat"]; !ok || len(got.want) != 1 {
		t.Errorf("want %v, only saves/Fine/level.dat", got.want)
	}
	if !reflect.DeepEqual(got.deletes, []string{"saves/Fine/old.dat", "saves/Worldly/x"}) {
		t.Errorf("deletes %q", got.deletes)
	}
	if len(got.notes) != 3 || got.notes[0][:22] != `world "World" is not r` {
		t.Errorf("notes %q", got.notes)
	}
}
