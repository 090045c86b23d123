//go:build race

package engine

// raceEnabled: the race detector makes scrypt several times slower, so a
// new key's calibrated cost comes out lower than restic's.
const raceEnabled = true
