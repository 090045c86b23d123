package instance

import (
	"encoding/json"
	"fmt"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// BenchmarkParseState is the state.json read that starts every pull and
// push, on a 10,000-file instance.
func BenchmarkParseState(b *testing.B) {
	m := scope.Manifest{}
	for i := range 10000 {
		m[fmt.Sprintf("saves/World %d/playerdata/%08x-1c2d-4e5f-8a9b-0c1d2e3f4a5b.dat", i%4, i)] = scope.Entry{Size: int64(i) * 977, MTime: 1764000000000000000 + int64(i), Mode: 0o644}
	}
	data, err := json.Marshal(State{Version: StateVersion, Last: "0123", Manifest: m})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseState(data); err != nil {
			b.Fatal(err)
		}
	}
}
