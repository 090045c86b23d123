package scope

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestInScope(t *testing.T) {
	s := New(Overrides{})
	s.Packwiz = []string{"packwiz.json", "resourcepacks/Pack Managed.zip"}
	tests := []struct {
		path string
		want bool
	}{
		{"saves/World/level.dat", true},
		{"saves/World/region/r.0.0.mca", true},
		{"options.txt", true},
		{"servers.dat", true},
		{"screenshots/2026-11-25.png", true},
		{"XaeroWorldMap/World/map.zip", true},
		{"resourcepacks/mine.zip", true},
		{"resourcepacks/Pack Managed.zip", false}, // owned by packwiz
		{"packwiz.json", false},
		{"saves/World/session.lock", false},
		{"saves/World/level.dat_old", false},
		{"saves/World/data/raids.tmp", false},
		{"saves/World/logs/x.txt", false}, // "logs/" matches at any depth
		{"mods/sodium.jar", false},
		{"config/sodium.json", false},
		{"logs/latest.log", false},
		{"crash-reports/c.txt", false},
		{".cloud-sync/state.json", false},
		{"options.txt.bak", false},
		{"savesX/a", false},
	}
	for _, tt := range tests {
		if got := s.InScope(tt.path); got != tt.want {
			t.Errorf("InScope(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, path string
		dir, want     bool
	}{
		{"*.tmp", "a/b/c.tmp", false, true},
		{"*.tmp", "c.tmp", false, true},
		{"**/session.lock", "saves/W/session.lock", false, true},
		{"**/session.lock", "session.lock", false, true},
		{"logs/", "logs", true, true},
		{"logs/", "logs", false, false},
		{"logs/", "saves/W/logs", true, true}, // a bare name matches at any depth, as in .gitignore
		{"saves/Test/", "saves/Test", true, true},
		{"saves/*/DIM-1/", "saves/W/DIM-1", true, true},
		{"saves/**/poi/", "saves/W/DIM1/poi", true, true},
		{"saves/Test/", "saves/Test2", true, false},
		{"a/b", "a/b", false, true},
		{"a/b", "x/a/b", false, false},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.pattern, tt.path, tt.dir); got != tt.want {
			t.Errorf("matchPattern(%q, %q, dir=%v) = %v, want %v", tt.pattern, tt.path, tt.dir, got, tt.want)
		}
	}
}

func TestOverrides(t *testing.T) {
	o, err := ParseOverrides([]byte(`{"include":["config/","!resourcepacks/"],"exclude":["saves/Creative/","!*.tmp","!**/session.lock"]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := New(o)
	checks := map[string]bool{
		"config/sodium.json":          true,
		"resourcepacks/mine.zip":      false,
		"saves/Creative/level.dat":    false,
		"saves/Survival/level.dat":    true,
		"saves/Survival/x.tmp":        true,  // the default was removed
		"saves/Survival/session.lock": false, // cannot be removed
	}
	for p, want := range checks {
		if got := s.InScope(p); got != want {
			t.Errorf("InScope(%q) = %v, want %v", p, got, want)
		}
	}
	for _, bad := range []string{
		`{"include":["/etc/"]}`, `{"include":["../x"]}`, `{"include":["C:\\x"]}`, `{"exclude":["a/../b"]}`,
		`{"exlude":[]}`, `{"include":"saves/"}`, `{"include":[]} trailing`, `{"include":["[bad"]}`,
	} {
		if _, err := ParseOverrides([]byte(bad)); err == nil {
			t.Errorf("ParseOverrides(%s) accepted", bad)
		}
	}
}

func TestWalkAndDiff(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		"saves/W/level.dat", "saves/W/session.lock", "saves/W/region/r.0.0.mca", "options.txt",
		"logs/latest.log", "mods/a.jar", "saves/W/level.dat_old", ".cloud-sync/state.json",
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Overrides{})
	m, err := s.Walk(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"options.txt", "saves/W/level.dat", "saves/W/region/r.0.0.mca"}
	if got := m.Paths(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "options.txt"), []byte("changed, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "saves/W/region/r.0.0.mca"))
	os.WriteFile(filepath.Join(dir, "saves/W/new.dat"), []byte("n"), 0o644)
	m2, err := s.Walk(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := Diff(m, m2)
	if !reflect.DeepEqual(c.Added, []string{"saves/W/new.dat"}) || !reflect.DeepEqual(c.Modified, []string{"options.txt"}) ||
		!reflect.DeepEqual(c.Removed, []string{"saves/W/region/r.0.0.mca"}) {
		t.Fatalf("Diff = %+v", c)
	}
	if w := Worlds(c.All()); !reflect.DeepEqual(w, []string{"W"}) {
		t.Fatalf("Worlds = %v", w)
	}
}

func TestPackwizFiles(t *testing.T) {
	dir := t.TempDir()
	if got, err := PackwizFiles(dir); err != nil || got != nil {
		t.Fatalf("no packwiz.json: %v %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, "packwiz.json"), []byte(`{"hash":"x","cachedFiles":{"mods/a.jar":{},"resourcepacks/Faithful.zip":{"hashes":[]}}}`), 0o644)
	got, err := PackwizFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(got, ","), "resourcepacks/Faithful.zip") || !strings.Contains(strings.Join(got, ","), "packwiz.json") {
		t.Fatalf("PackwizFiles = %v", got)
	}
	os.WriteFile(filepath.Join(dir, "packwiz.json"), []byte(`{"cachedFiles":`), 0o644)
	if _, err := PackwizFiles(dir); err == nil || !strings.Contains(err.Error(), "packwiz.json") {
		t.Fatalf("corrupt packwiz.json: %v", err)
	}
}

func FuzzParseOverrides(f *testing.F) {
	f.Add([]byte(`{"include":["config/"],"exclude":["saves/Test/"]}`))
	f.Add([]byte(`{"include":["!resourcepacks/"]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOverrides(data)
		if err != nil {
			return
		}
		s := New(o)
		// Our own state is never in scope, whatever scope.json says.
		if s.InScope(".cloud-sync/state.json") || s.InScope("saves/W/session.lock") {
			t.Fatalf("scope.json %q put state or a session lock in scope", data)
		}
	})
}

func TestResticFilter(t *testing.T) {
	m := Manifest{"saves/W/level.dat": {}, "options.txt": {}, "screenshots/a.png": {}}
	s := New(Overrides{})
	targets, excludes, ok := s.ResticFilter(m, Facts{})
	if !ok || !reflect.DeepEqual(targets, []string{"saves", "options.txt", "screenshots"}) {
		t.Fatalf("ResticFilter = %v %v %v", targets, excludes, ok)
	}
	for _, want := range []string{"session.lock", "*.tmp", "logs", ".cloud-sync"} {
		found := false
		for _, e := range excludes {
			found = found || e == want
		}
		if !found {
			t.Errorf("excludes %v lack %q", excludes, want)
		}
	}
	for name, tt := range map[string]struct {
		s Scope
		m Manifest
		f Facts
	}{
		"symlink in scope":                       {s, m, Facts{Irregular: 1}},
		"packwiz file in scope":                  {Scope{Include: s.Include, Exclude: s.Exclude, Packwiz: []string{"resourcepacks/x.zip"}}, m, Facts{}},
		"anchored exclude":                       {New(Overrides{Exclude: []string{"saves/Creative/"}}), m, Facts{}},
		"file named like a dir pattern":          {s, Manifest{"saves/W/logs": {}}, Facts{}},
		"file named like a wildcard dir pattern": {New(Overrides{Exclude: []string{"*.bak/"}}), Manifest{"saves/W/r.bak": {}}, Facts{}},
	} {
		if _, _, ok := tt.s.ResticFilter(tt.m, tt.f); ok {
			t.Errorf("%s: restic's filter accepted", name)
		}
	}
	// packwiz owning mods only does not matter.
	pw := s
	pw.Packwiz = []string{"mods/a.jar", "packwiz.json"}
	if _, _, ok := pw.ResticFilter(m, Facts{}); !ok {
		t.Error("packwiz files outside the scope refused restic's filter")
	}
	// An include below a folder that is not synced is named itself.
	deep := New(Overrides{Include: []string{"config/xaero/"}})
	withDeep := Manifest{"options.txt": {}, "config/xaero/minimap.txt": {}}
	if targets, _, ok := deep.ResticFilter(withDeep, Facts{}); !ok || !reflect.DeepEqual(targets, []string{"options.txt", "config/xaero"}) {
		t.Errorf("deep include targets = %v, %v", targets, ok)
	}
	// Nested includes are reached through the outer folder.
	nested := New(Overrides{Include: []string{"saves/W/"}})
	if targets, _, _ := nested.ResticFilter(m, Facts{}); !reflect.DeepEqual(targets, []string{"saves", "options.txt", "screenshots"}) {
		t.Errorf("nested include targets = %v", targets)
	}
}

func TestParents(t *testing.T) {
	s := Scope{Include: []string{"saves/", "options.txt", "config/xaero/minimap.txt", "config/xaero/", "a/b/c/"}}
	got := s.Parents()
	want := []string{"", "config", "a", "config/xaero", "a/b"}
	if !slices.Equal(got, want) {
		t.Fatalf("Parents() = %q, want %q", got, want)
	}
}

func TestAffects(t *testing.T) {
	s := New(Overrides{Include: []string{"config/xaero/"}})
	for _, c := range []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"options.txt", false, true},
		{"saves", true, true},
		{"saves/World/region/r.0.0.mca", false, true},
		{"saves/World/session.lock", false, false},
		{"saves/World/level.dat_old", false, false},
		{"config", true, true}, // above an include entry
		{"config/other.toml", false, false},
		{"config/xaero/minimap.txt", false, true},
		{"logs", true, false},
		{"mods/a.jar", false, false},
		{".cloud-sync/state.json", false, false},
		{"usercache.json", false, false},
	} {
		if got := s.Affects(c.rel, c.isDir); got != c.want {
			t.Errorf("Affects(%q, %v) = %v, want %v", c.rel, c.isDir, got, c.want)
		}
	}
}

// WalkFiles names every folder it reads before taking its files' stats,
// and none it skips.
func TestWalkFilesBefore(t *testing.T) {
	pack := t.TempDir()
	for _, name := range []string{"saves/World/region/r.0.0.mca", "saves/World/level.dat", "logs/latest.log", "options.txt", "saves/.cache/x"} {
		p := filepath.Join(pack, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var seen []string
	m, _, err := New(Overrides{}).WalkFiles(pack, func(rel string) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	if want := []string{"saves", "saves/World", "saves/World/region"}; !slices.Equal(seen, want) {
		t.Fatalf("folders = %q, want %q", seen, want)
	}
	if m.Len() != 3 {
		t.Fatalf("walk recorded %d files, want 3: %v", m.Len(), m.Manifest().Paths())
	}
	stop := errors.New("stop")
	if _, _, err := New(Overrides{}).WalkFiles(pack, func(string) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("WalkFiles with a failing hook = %v, want it", err)
	}
}
