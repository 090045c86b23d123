package history

import (
	"strings"
	"testing"
)

func TestUnitOf(t *testing.T) {
	for _, c := range []struct {
		rules Rules
		path  string
		want  Unit
		name  string
	}{
		{nil, "saves/World Two/level.dat", Unit{"saves/World Two/", RuleWorlds}, "World Two"},
		{nil, "saves/World Two/region/r.0.0.mca", Unit{"saves/World Two/", RuleWorlds}, "World Two"},
		{nil, "saves/notes.txt", Unit{"saves/notes.txt", RuleNewest}, "saves/notes.txt"},
		{nil, "screenshots/2026-11-30_14.02.11.png", Unit{"screenshots/2026-11-30_14.02.11.png", RuleAdditive}, "screenshots/2026-11-30_14.02.11.png"},
		{nil, "schematics/house.litematic", Unit{"schematics/house.litematic", RuleAdditive}, "schematics/house.litematic"},
		{nil, "journeymap/data/sp/World/overworld/day/0,0.png", Unit{"journeymap/data/sp/World/overworld/day/0,0.png", RuleNewest}, ""},
		{nil, "XaeroWorldMap/World/null/0_0.zip", Unit{"XaeroWorldMap/World/null/0_0.zip", RuleNewest}, ""},
		{nil, "XaeroWaypoints/World/mw$default_1.txt", Unit{"XaeroWaypoints/World/mw$default_1.txt", RuleNewest}, ""},
		{nil, "xaero/minimap.txt", Unit{"xaero/minimap.txt", RuleNewest}, ""},
		{nil, "options.txt", Unit{"options.txt", RuleNewest}, "options.txt"},
		{nil, "servers.dat", Unit{"servers.dat", RuleNewest}, ""},
		{nil, "hotbar.nbt", Unit{"hotbar.nbt", RuleNewest}, ""},
		{nil, "config/sodium.json", Unit{"config/sodium.json", RuleNewest}, ""},
		// A name that only starts like a default entry is not under it.
		{nil, "savesX/a", Unit{"savesX/a", RuleNewest}, ""},
		{nil, "screenshots.png", Unit{"screenshots.png", RuleNewest}, ""},
		// Overrides from scope.json.
		{Rules{"config/": RuleFolder}, "config/sodium.json", Unit{"config/", RuleFolder}, "config"},
		{Rules{"config/": RuleFolder}, "config/a/b.toml", Unit{"config/", RuleFolder}, "config"},
		{Rules{"options.txt": RuleFolder}, "options.txt", Unit{"options.txt", RuleFolder}, "options.txt"},
		{Rules{"servers.dat": RuleWorlds}, "servers.dat", Unit{"servers.dat", RuleFolder}, "servers.dat"},
		{Rules{"screenshots/": RuleNewest}, "screenshots/a.png", Unit{"screenshots/a.png", RuleNewest}, ""},
		{Rules{"saves/": RuleFolder}, "saves/A/level.dat", Unit{"saves/", RuleFolder}, "saves"},
		// The most specific entry wins, default or not.
		{Rules{"saves/Creative/region/": RuleNewest}, "saves/Creative/region/r.0.0.mca", Unit{"saves/Creative/region/r.0.0.mca", RuleNewest}, ""},
		{Rules{"saves/Creative/region/": RuleNewest}, "saves/Creative/level.dat", Unit{"saves/Creative/", RuleWorlds}, "Creative"},
		{Rules{"Distant_Horizons_server_data/": RuleWorlds}, "Distant_Horizons_server_data/srv/x.sqlite", Unit{"Distant_Horizons_server_data/srv/", RuleWorlds}, "srv"},
	} {
		got := c.rules.UnitOf(c.path)
		if got != c.want {
			t.Errorf("UnitOf(%q) with %v = %+v, want %+v", c.path, c.rules, got, c.want)
		}
		if c.name != "" && got.Name() != c.name {
			t.Errorf("UnitOf(%q).Name() = %q, want %q", c.path, got.Name(), c.name)
		}
		if atomic := c.want.Rule == RuleWorlds || c.want.Rule == RuleFolder; got.Atomic() != atomic {
			t.Errorf("UnitOf(%q).Atomic() = %v, want %v", c.path, got.Atomic(), atomic)
		}
	}
}

func TestRulesCheck(t *testing.T) {
	for _, c := range []struct {
		rules Rules
		want  string // "" = valid
	}{
		{nil, ""},
		{Rules{"config/": RuleFolder, "options.txt": RuleNewest, "shots/": RuleAdditive, "dh/": RuleWorlds}, ""},
		{Rules{"config/": "atomic"}, `merge rule of "config/": unknown rule "atomic"; use worlds, folder, additive or newest`},
		{Rules{"../x/": RuleNewest}, `merge rule of "../x/": not a path inside the pack folder`},
		{Rules{"/etc/": RuleNewest}, `merge rule of "/etc/": not a path inside the pack folder`},
		{Rules{"a//b": RuleNewest}, `merge rule of "a//b": not a path inside the pack folder`},
	} {
		err := c.rules.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.rules, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%v: error %v, want %q", c.rules, err, c.want)
		}
	}
}
