package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// shape is the size of a generated instance.
type shape struct {
	Name        string
	Worlds      int
	Regions     int // region files per world (overworld, nether, end, entities, poi)
	RegionMin   int // bytes
	RegionMax   int
	Players     int // playerdata + advancements + stats per world, each
	DataFiles   int // data/*.dat per world
	Screenshots int
	ShotSize    int
	// MapTiles are small files of a map mod's cache (XaeroWorldMap/), the
	// bulk of a long-played instance's file count.
	MapTiles int
}

var shapes = map[string]shape{
	// About 500 files / 30 MB in scope.
	"small": {Name: "small", Worlds: 1, Regions: 10, RegionMin: 2 << 20, RegionMax: 3 << 20,
		Players: 140, DataFiles: 40, Screenshots: 6, ShotSize: 600 << 10},
	// About 10,000 files / 1 GB in scope.
	"large": {Name: "large", Worlds: 4, Regions: 75, RegionMin: 2 << 20, RegionMax: 4 << 20,
		Players: 760, DataFiles: 300, Screenshots: 90, ShotSize: 1 << 20},
	// The large instance plus 90,000 map-mod tiles: about 100,000 files.
	"scale": {Name: "scale", Worlds: 4, Regions: 75, RegionMin: 2 << 20, RegionMax: 4 << 20,
		Players: 760, DataFiles: 300, Screenshots: 90, ShotSize: 1 << 20, MapTiles: 90_000},
	// The large instance plus 240,000 tiles: about 250,000 files, for the
	// memory figures (slow: every phase runs on it).
	"huge": {Name: "huge", Worlds: 4, Regions: 75, RegionMin: 2 << 20, RegionMax: 4 << 20,
		Players: 760, DataFiles: 300, Screenshots: 90, ShotSize: 1 << 20, MapTiles: 240_000},
}

// scopeRoots are the generated top-level entries that instance-sync syncs
// by default; the raw restic baselines back up exactly these.
var scopeRoots = []string{"saves", "options.txt", "servers.dat", "screenshots", "resourcepacks", "XaeroWorldMap"}

// rawExcludes keeps the raw baseline to the same files as instance-sync's
// default scope (the generated instance holds no other excluded names).
var rawExcludes = []string{"--exclude", "session.lock", "--exclude", "*.dat_old"}

// generator writes file contents from a fast seeded PRNG: unique bytes for
// every file (so restic cannot deduplicate across files), mixed with zero
// runs and low-entropy runs the way region files hold empty sectors and
// repetitive NBT, so zstd compresses them somewhat but not trivially.
type generator struct {
	rng   *rand.ChaCha8
	files int
	bytes int64
}

func newGenerator(seed uint64) *generator {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return &generator{rng: rand.NewChaCha8(s)}
}

// fill makes content of n bytes in 4 KiB sectors: half random, a quarter
// zeros, a quarter from a 16-letter alphabet.
func (g *generator) fill(n int) []byte {
	b := make([]byte, n)
	for off := 0; off < n; off += 4096 {
		end := min(off+4096, n)
		sec := b[off:end]
		switch g.rng.Uint64() % 4 {
		case 0, 1:
			_, _ = g.rng.Read(sec)
		case 2:
			// zeros: an empty sector
		case 3:
			_, _ = g.rng.Read(sec)
			for i := range sec {
				sec[i] = 'a' + sec[i]&15
			}
		}
	}
	return b
}

func (g *generator) write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	g.files++
	g.bytes += int64(len(data))
	return nil
}

func (g *generator) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + int(g.rng.Uint64()%uint64(hi-lo))
}

// generate writes a realistic instance into pack and reports the number
// of files and bytes in the sync scope.
func generate(pack string, sh shape, seed uint64) (files int, bytes int64, err error) {
	g := newGenerator(seed)
	w := func(rel string, n int) {
		if err == nil {
			err = g.write(filepath.Join(pack, filepath.FromSlash(rel)), g.fill(n))
		}
	}
	for wi := range sh.Worlds {
		world := fmt.Sprintf("saves/World %d", wi+1)
		dims := []string{"region", "DIM-1/region", "DIM1/region", "entities", "poi"}
		for r := range sh.Regions {
			// Most regions are in the overworld, as in a played world.
			dim := dims[0]
			switch {
			case r%10 == 7:
				dim = dims[1]
			case r%10 == 8:
				dim = dims[2]
			case r%20 == 9:
				dim = dims[3]
			case r%20 == 19:
				dim = dims[4]
			}
			w(fmt.Sprintf("%s/%s/r.%d.%d.mca", world, dim, r%9-4, r/9-4), g.between(sh.RegionMin, sh.RegionMax))
		}
		w(world+"/level.dat", g.between(2<<10, 6<<10))
		w(world+"/level.dat_old", g.between(2<<10, 6<<10)) // excluded by default
		w(world+"/session.lock", 3)                        // excluded always
		w(world+"/icon.png", g.between(8<<10, 20<<10))
		for p := range sh.Players {
			uuid := fakeUUID(g.rng)
			_ = p
			w(world+"/playerdata/"+uuid+".dat", g.between(1<<10, 8<<10))
			w(world+"/advancements/"+uuid+".json", g.between(1<<10, 6<<10))
			w(world+"/stats/"+uuid+".json", g.between(512, 3<<10))
		}
		for d := range sh.DataFiles {
			w(fmt.Sprintf("%s/data/map_%d.dat", world, d), g.between(256, 6<<10))
		}
	}
	for i := range sh.Screenshots {
		w(fmt.Sprintf("screenshots/2025-01-%02d_12.%02d.%02d.png", i%28+1, i/60%60, i%60), g.between(sh.ShotSize/2, sh.ShotSize*3/2))
	}
	// Xaero's world map: per dimension and cave layer, a folder of
	// small zipped region tiles.
	for i := range sh.MapTiles {
		w(fmt.Sprintf("XaeroWorldMap/Multiplayer_server/%s/mw$default/%d/%d_%d.zip",
			[]string{"null", "DIM-1", "DIM1"}[i%3], i/3%16, i/48%400-200, i/19200-6), g.between(300, 2<<10))
	}
	w("options.txt", 4<<10)
	w("servers.dat", 600)
	w("resourcepacks/Faithful.zip", 2<<20)
	inScope, inBytes := g.files-2*sh.Worlds, g.bytes
	// Out of scope: mods, configs, logs; they must not be touched.
	for i := range 40 {
		w(fmt.Sprintf("mods/mod-%02d.jar", i), g.between(50<<10, 300<<10))
	}
	for i := range 60 {
		w(fmt.Sprintf("config/mod-%02d.toml", i), g.between(200, 4<<10))
	}
	w("logs/latest.log", 64<<10)
	return inScope, inBytes, err
}

func fakeUUID(r *rand.ChaCha8) string {
	var b [16]byte
	_, _ = r.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// touchRegion rewrites 64 KiB at a random place of one region file, as a
// game session that changed a few chunks does, and moves its mtime on.
func touchRegion(path string, seed uint64) error {
	g := newGenerator(seed)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	off := int64(g.rng.Uint64() % uint64(fi.Size()-64<<10))
	if _, err := f.WriteAt(g.fill(64<<10), off&^4095); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	t := time.Now()
	return os.Chtimes(path, t, t)
}

// playWorld changes one world the way a session does: a few region files,
// level.dat and one player's data.
func playWorld(pack, world string, seed uint64) error {
	dir := filepath.Join(pack, "saves", world)
	regions, err := filepath.Glob(filepath.Join(dir, "region", "*.mca"))
	if err != nil || len(regions) == 0 {
		return fmt.Errorf("no region files in %s", dir)
	}
	for i := range 3 {
		if err := touchRegion(regions[(int(seed)+i*7)%len(regions)], seed+uint64(i)); err != nil {
			return err
		}
	}
	g := newGenerator(seed)
	if err := os.WriteFile(filepath.Join(dir, "level.dat"), g.fill(4<<10), 0o644); err != nil {
		return err
	}
	players, _ := filepath.Glob(filepath.Join(dir, "playerdata", "*.dat"))
	if len(players) > 0 {
		return os.WriteFile(players[0], g.fill(5<<10), 0o644)
	}
	return nil
}
