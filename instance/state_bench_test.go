package instance

import (
	"fmt"
	"os"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// benchState saves the state of a synced 10,000-file instance.
func benchState(b *testing.B) Paths {
	m := scope.Manifest{}
	for i := range 10000 {
		m[fmt.Sprintf("saves/World %d/playerdata/%08x-1c2d-4e5f-8a9b-0c1d2e3f4a5b.dat", i%4, i)] = scope.Entry{Size: int64(i) * 977, MTime: 1764000000000000000 + int64(i), Mode: 0o644}
	}
	p := Paths{Pack: b.TempDir()}
	if err := os.MkdirAll(p.Dir(), 0o700); err != nil {
		b.Fatal(err)
	}
	s := State{Last: "0123"}
	s.SetManifest(m)
	if err := p.SaveState(&s); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkLoadState is the state read that starts every pull and push.
func BenchmarkLoadState(b *testing.B) {
	p := benchState(b)
	for b.Loop() {
		if _, err := p.LoadState(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadManifest is the extra read of a sync that found changes.
func BenchmarkLoadManifest(b *testing.B) {
	p := benchState(b)
	for b.Loop() {
		s, err := p.LoadState()
		if err == nil {
			err = s.LoadManifest()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
