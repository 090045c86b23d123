package scope

import (
	"reflect"
	"strings"
	"testing"
)

func TestNameHazards(t *testing.T) {
	tests := []struct {
		name  string
		goos  string
		paths []string
		units []string // the units left out
		why   string   // a word of the first hazard's reason
	}{
		{"linux holds everything", "linux", []string{"saves/World", "saves/world", "saves/CON", "saves/a:b"}, nil, ""},
		{"plain names", "windows", []string{"saves/World/level.dat", "saves/Welt Ü/level.dat", "options.txt", "screenshots/2024-01-01_12.00.00.png"}, nil, ""},
		{"worlds differing in case", "windows", []string{"saves/World", "saves/World/level.dat", "saves/world", "saves/world/level.dat", "saves/Other/level.dat"}, []string{"saves/World", "saves/world"}, "case"},
		{"three spellings", "windows", []string{"saves/WORLD/a", "saves/World/a", "saves/world/a"}, []string{"saves/WORLD", "saves/World", "saves/world"}, "case"},
		{"case inside a world takes the world", "windows", []string{"saves/W/data/Map.dat", "saves/W/data/map.dat", "saves/V/level.dat"}, []string{"saves/W"}, "case"},
		{"case on macOS too", "darwin", []string{"saves/World/a", "saves/world/a"}, []string{"saves/World", "saves/world"}, "macOS"},
		{"macOS allows colons", "darwin", []string{"saves/a:b/level.dat", "saves/CON/level.dat"}, nil, ""},
		{"case outside saves: the files", "windows", []string{"screenshots/A.png", "screenshots/a.png", "screenshots/b.png"}, []string{"screenshots/A.png", "screenshots/a.png"}, "case"},
		{"reserved world name", "windows", []string{"saves/CON/level.dat", "saves/con2/level.dat"}, []string{"saves/CON"}, "reserved"},
		{"reserved with an extension, any case", "windows", []string{"saves/W/aux.dat", "saves/X/Com1.txt", "saves/Y/lpt¹", "saves/Z/nul .x"}, []string{"saves/W", "saves/X", "saves/Y", "saves/Z"}, "reserved"},
		{"not reserved", "windows", []string{"saves/CONSOLE/level.dat", "saves/auxiliary.dat", "saves/COM10/x", "saves/xcon"}, nil, ""},
		{"trailing dot and space", "windows", []string{"saves/Trail./level.dat", "saves/Space /level.dat", "options.txt."}, []string{"options.txt.", "saves/Space ", "saves/Trail."}, "dot or a space"},
		{"forbidden characters", "windows", []string{`saves/What?/level.dat`, `saves/a<b/x`, `saves/q"/x`, `saves/p|q/x`, `saves/s*/x`, `saves/b\s/x`, "screenshots/a:b.png", "screenshots/ok.png"}, []string{`saves/What?`, `saves/a<b`, `saves/b\s`, `saves/p|q`, `saves/q"`, `saves/s*`, "screenshots/a:b.png"}, "does not allow"},
		{"control character", "windows", []string{"saves/a\x01b/level.dat"}, []string{"saves/a\x01b"}, "control"},
		{"bad folder outside saves", "windows", []string{"schematics/x:y/a.schem", "schematics/x:y/b.schem"}, []string{"schematics/x:y"}, "does not allow"},
		{"long paths are fine", "windows", []string{"saves/W/" + strings.Repeat("d/", 150) + "f.dat"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NameHazards(tt.paths, tt.goos)
			units := HazardUnits(got)
			want := append([]string(nil), tt.units...)
			if !reflect.DeepEqual(units, want) {
				t.Fatalf("units %q, want %q (%+v)", units, want, got)
			}
			if len(got) > 0 && !strings.Contains(got[0].Reason, tt.why) {
				t.Errorf("reason %q does not say %q", got[0].Reason, tt.why)
			}
		})
	}
}

func TestEscapePattern(t *testing.T) {
	sc := Scope{Include: []string{"saves/"}, Exclude: []string{EscapePattern("saves/a*b") + "/", EscapePattern(`saves/x\y?[z]`) + "/"}}
	for rel, want := range map[string]bool{
		"saves/a*b/level.dat":     false,
		"saves/axxb/level.dat":    true,
		`saves/x\y?[z]/level.dat`: false,
		"saves/xy?z/level.dat":    true,
	} {
		if got := sc.InScope(rel); got != want {
			t.Errorf("InScope(%q) = %v, want %v", rel, got, want)
		}
	}
}
