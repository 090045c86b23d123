package scope

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchInstance lays out n empty files the way a large instance spreads
// them: worlds of region files and many small player files.
func benchInstance(b *testing.B, n int) string {
	b.Helper()
	pack := b.TempDir()
	dirs := []string{"region", "playerdata", "advancements", "stats", "data"}
	for i := range n {
		dir := filepath.Join(pack, "saves", fmt.Sprintf("World %d", i%4+1), dirs[i%len(dirs)])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.dat", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return pack
}

// BenchmarkWalk is the stat walk of a no-op pull or push on a 10,000-file
// instance (warm page cache).
func BenchmarkWalk(b *testing.B) {
	pack := benchInstance(b, 10000)
	s := New(Overrides{})
	b.ResetTimer()
	for b.Loop() {
		m, err := s.Walk(pack)
		if err != nil || len(m) != 10000 {
			b.Fatal(len(m), err)
		}
	}
}

// BenchmarkExcluded is the scope matching the walk does for every file.
func BenchmarkExcluded(b *testing.B) {
	s := New(Overrides{})
	for b.Loop() {
		if s.Excluded("saves/World 1/playerdata/0f3e2a1b-1c2d-4e5f-8a9b-0c1d2e3f4a5b.dat", false) {
			b.Fatal("excluded")
		}
	}
}
