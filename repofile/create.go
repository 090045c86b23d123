package repofile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/restic/chunker"
	"golang.org/x/crypto/scrypt"

	//lint:ignore SA1019 restic's file format is Poly1305-AES
	"golang.org/x/crypto/poly1305"
)

// ScryptParams are a key file's key-derivation cost.
type ScryptParams struct{ N, R, P int }

// The cost restic gives a new key: as much memory as fits 60 MiB with
// r = 8 (N = 2^15, 32 MiB), and p raised until one derivation takes
// about half a second on this computer.
const (
	scryptMemory  = 60 << 20
	scryptTimeout = 500 * time.Millisecond
	saltSize      = 64
)

// CalibrateScrypt chooses the parameters restic's "init" would choose
// here. restic times derivations at rising p until one takes half a
// second and keeps the p before it: up to seven derivations, about two
// seconds of work. Here a derivation at p = 1 and one at p = 2 give the
// fixed cost (the 32 MiB to allocate) and the cost of each step of p, and
// p is the largest whose derivation stays under half a second.
func CalibrateScrypt() (ScryptParams, error) {
	salt := make([]byte, saltSize)
	return calibrate(func(n, p int) (time.Duration, error) {
		// Each derivation allocates 128·r·N bytes (32 MiB): the last
		// one's is collected first, so that one is held at a time.
		runtime.GC()
		start := time.Now()
		_, err := scrypt.Key([]byte("calibration"), salt, n, 8, p, 64)
		return time.Since(start), err
	})
}

// calibrate is CalibrateScrypt's choice, given how long a derivation at
// N and p takes.
func calibrate(timed func(n, p int) (time.Duration, error)) (ScryptParams, error) {
	p := ScryptParams{N: 1, R: 8, P: 1}
	for 128*p.R*p.N*2 <= scryptMemory {
		p.N <<= 1
	}
	one, err := timed(p.N, 1)
	if err != nil {
		return p, err
	}
	for one > scryptTimeout && p.N > 1<<10 {
		// A computer this slow gets less memory, as restic gives it.
		p.N >>= 1
		if one, err = timed(p.N, 1); err != nil {
			return p, err
		}
	}
	two, err := timed(p.N, 2)
	if err != nil {
		return p, err
	}
	step := max(two-one, one/4, time.Microsecond)
	fixed := max(one-step, 0)
	p.P = min(max(1, int((scryptTimeout-1-fixed)/step)), maxScryptP)
	return p, nil
}

// NewMasterKey draws a master key at random.
func NewMasterKey() (Key, error) {
	var k Key
	for _, b := range [][]byte{k.encrypt[:], k.macK[:], k.macR[:]} {
		if _, err := rand.Read(b); err != nil {
			return Key{}, err
		}
	}
	return k, nil
}

// Seal encrypts and authenticates plain as restic writes a repository
// file: a random IV, the AES-256-CTR ciphertext, then the Poly1305-AES
// MAC of the ciphertext.
func (k Key) Seal(plain []byte) ([]byte, error) {
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	return k.sealIV(iv, plain), nil
}

func (k Key) sealIV(iv, plain []byte) []byte {
	block, err := aes.NewCipher(k.encrypt[:])
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	out := make([]byte, ivSize+len(plain), overhead+len(plain))
	copy(out, iv)
	cipher.NewCTR(block, iv).XORKeyStream(out[ivSize:], plain)
	macBlock, err := aes.NewCipher(k.macK[:])
	if err != nil {
		panic(err)
	}
	var otk [32]byte
	copy(otk[:16], k.macR[:])
	macBlock.Encrypt(otk[16:], iv)
	var tag [macSize]byte
	poly1305.Sum(&tag, out[ivSize:], &otk)
	clear(otk[:])
	return append(out, tag[:]...)
}

// NewRepository is what "restic init" writes to a new repository of
// format 2: a key file holding a new master key under password, and the
// config, encrypted with that master key (uncompressed, as restic writes
// it: the format version is read from it). KeyID is the key file's name
// in keys/ (its SHA-256); the config is written after the key, so a
// repository with a config always has the key that opens it.
type NewRepository struct {
	Master  Key
	KeyID   string
	KeyFile []byte
	Config  []byte
}

// CreateRepository makes a new repository's key file and config. The key
// file names user and host, as restic's "key list" shows them. It costs
// one key derivation at p.
func CreateRepository(password string, p ScryptParams, user, host string, now time.Time) (NewRepository, error) {
	master, err := NewMasterKey()
	if err != nil {
		return NewRepository{}, err
	}
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return NewRepository{}, err
	}
	runtime.GC() // a calibration's 32 MiB, collected before these
	userKey, err := passwordKey(password, salt, p)
	if err != nil {
		return NewRepository{}, fmt.Errorf("key derivation: %v", err)
	}
	plainMaster, err := master.MarshalJSON()
	if err != nil {
		return NewRepository{}, err
	}
	data, err := userKey.Seal(plainMaster)
	clear(plainMaster)
	if err != nil {
		return NewRepository{}, err
	}
	keyFile, err := json.Marshal(struct {
		Created  time.Time `json:"created"`
		Username string    `json:"username"`
		Hostname string    `json:"hostname"`
		keyFile
	}{now, user, host, keyFile{KDF: "scrypt", N: p.N, R: p.R, P: p.P, Salt: salt, Data: data}})
	if err != nil {
		return NewRepository{}, err
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return NewRepository{}, err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return NewRepository{}, err
	}
	cfg, err := json.Marshal(struct {
		Version           int         `json:"version"`
		ID                string      `json:"id"`
		ChunkerPolynomial chunker.Pol `json:"chunker_polynomial"`
	}{2, hex.EncodeToString(id), pol})
	if err != nil {
		return NewRepository{}, err
	}
	config, err := master.Seal(cfg)
	if err != nil {
		return NewRepository{}, err
	}
	sum := sha256.Sum256(keyFile)
	return NewRepository{Master: master, KeyID: hex.EncodeToString(sum[:]), KeyFile: keyFile, Config: config}, nil
}
