package repofile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/restic/chunker"
)

// TestCreateRepository: the key file opens with the password (and only
// with it) to the master key that opens the config, its name is its
// SHA-256, and the config is restic's format 2 with a usable chunker
// polynomial.
func TestCreateRepository(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	repo, err := CreateRepository("pw", ScryptParams{N: 1 << 10, R: 8, P: 2}, "alice", "laptop", now)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(repo.KeyFile); hex.EncodeToString(sum[:]) != repo.KeyID {
		t.Errorf("key id %s is not the key file's SHA-256", repo.KeyID)
	}
	master, err := OpenKeyFile(repo.KeyFile, "pw")
	if err != nil || master != repo.Master {
		t.Fatalf("key file opens to another key (%v)", err)
	}
	if _, err := OpenKeyFile(repo.KeyFile, "other"); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("another password: %v, want ErrWrongPassword", err)
	}
	if !master.OpensConfig(repo.Config) {
		t.Fatal("the master key does not open the config")
	}
	var kf struct {
		Created  time.Time `json:"created"`
		Username string    `json:"username"`
		Hostname string    `json:"hostname"`
		KDF      string    `json:"kdf"`
		N, R, P  int
		Salt     []byte `json:"salt"`
	}
	if err := json.Unmarshal(repo.KeyFile, &kf); err != nil {
		t.Fatal(err)
	}
	if !kf.Created.Equal(now) || kf.Username != "alice" || kf.Hostname != "laptop" || kf.KDF != "scrypt" || kf.N != 1<<10 || kf.R != 8 || kf.P != 2 || len(kf.Salt) != 64 {
		t.Errorf("key file: %s", repo.KeyFile)
	}
	plain, err := master.Open(repo.Config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version int         `json:"version"`
		ID      string      `json:"id"`
		Pol     chunker.Pol `json:"chunker_polynomial"`
	}
	if err := json.Unmarshal(plain, &cfg); err != nil {
		t.Fatalf("config is not uncompressed JSON: %v", err)
	}
	if _, err := hex.DecodeString(cfg.ID); cfg.Version != 2 || len(cfg.ID) != 64 || err != nil || !cfg.Pol.Irreducible() || cfg.Pol.Deg() != 53 {
		t.Errorf("config: %s", plain)
	}
	other, err := CreateRepository("pw", ScryptParams{N: 1 << 10, R: 8, P: 1}, "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if other.Master == repo.Master || other.KeyID == repo.KeyID || other.Master.OpensConfig(repo.Config) {
		t.Error("two new repositories share a key")
	}
}

// TestSealOpens: a sealed file opens to its plaintext, with a new IV each
// time, and a changed byte fails its MAC.
func TestSealOpens(t *testing.T) {
	k, err := NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"version":2}`)
	a, err := k.Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal(plain)
	if bytes.Equal(a[:ivSize], b[:ivSize]) {
		t.Error("two seals share an IV")
	}
	if got, err := k.Open(a); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	a[ivSize] ^= 1
	if _, err := k.Open(a); !errors.Is(err, ErrMAC) {
		t.Errorf("changed file: %v, want ErrMAC", err)
	}
}

// TestCalibrateScrypt: restic's memory cost (N = 2^15 with r = 8, 32 MiB)
// and the largest p whose derivation stays under half a second; a
// computer too slow for even p = 1 gets a smaller N, as restic gives it.
func TestCalibrateScrypt(t *testing.T) {
	for _, tc := range []struct {
		name         string
		fixed, step  time.Duration // at N = 2^15; both halve with N
		want         ScryptParams
		wantMeasured int // derivations timed
	}{
		{"this machine", 25 * time.Millisecond, 66 * time.Millisecond, ScryptParams{N: 1 << 15, R: 8, P: 7}, 2},
		{"fast", 2 * time.Millisecond, 20 * time.Millisecond, ScryptParams{N: 1 << 15, R: 8, P: 24}, 2},
		{"very fast", 0, time.Millisecond, ScryptParams{N: 1 << 15, R: 8, P: maxScryptP}, 2},
		{"slow", 100 * time.Millisecond, 700 * time.Millisecond, ScryptParams{N: 1 << 14, R: 8, P: 1}, 3},
		{"slower", 100 * time.Millisecond, 1500 * time.Millisecond, ScryptParams{N: 1 << 13, R: 8, P: 1}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measured := 0
			got, err := calibrate(func(n, p int) (time.Duration, error) {
				measured++
				scale := time.Duration(n) // the cost is linear in N
				return (tc.fixed + tc.step*time.Duration(p)) * scale / (1 << 15), nil
			})
			if err != nil || got != tc.want || measured != tc.wantMeasured {
				t.Errorf("calibrate: %+v after %d derivations (%v), want %+v after %d", got, measured, err, tc.want, tc.wantMeasured)
			}
		})
	}
	// The real one: restic's memory cost, unless this computer (or the
	// race detector) makes even p = 1 take over half a second.
	p, err := CalibrateScrypt()
	if err != nil {
		t.Fatal(err)
	}
	if p.N < 1<<10 || p.N > 1<<15 || p.N&(p.N-1) != 0 || p.R != 8 || p.P < 1 || p.P > maxScryptP {
		t.Errorf("params %+v", p)
	}
}

// TestKeyOfAFastComputerOpens: restic's init on a computer where one
// derivation at p = 1 takes under 30 ms writes a key with p above 16; the
// key opens.
func TestKeyOfAFastComputerOpens(t *testing.T) {
	repo, err := CreateRepository("pw", ScryptParams{N: 1 << 10, R: 8, P: 20}, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if master, err := OpenKeyFile(repo.KeyFile, "pw"); err != nil || master != repo.Master {
		t.Fatalf("a key with p = 20: %v", err)
	}
}
