package repofile

import (
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/scrypt"
)

// ErrWrongPassword means a key file does not open with the password.
var ErrWrongPassword = errors.New("key file does not open with this password")

// keyFile is a file of the repository's keys/ folder: the master key,
// encrypted with a key derived from a password by scrypt.
type keyFile struct {
	KDF  string `json:"kdf"`
	N    int    `json:"N"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt []byte `json:"salt"`
	Data []byte `json:"data"`
}

// Limits on a key file's scrypt parameters: restic calibrates them to
// about half a second and 60 MiB; a file asking for far more would make
// this computer spend minutes or gigabytes on one key.
const (
	maxScryptMemory = 1 << 30 // 128 * N * r bytes
	maxScryptP      = 64
)

// OpenKeyFile derives the key that password gives for a keys/ file and
// decrypts the master key in it (restic's design: scrypt(password, salt,
// N, r, p) gives 64 bytes, the AES-256 key then the Poly1305-AES key k||r).
// A password the file was not made for gives ErrWrongPassword. It takes
// as long as restic's own key derivation, most of a second.
func OpenKeyFile(file []byte, password string) (Key, error) {
	var f keyFile
	if err := json.Unmarshal(file, &f); err != nil {
		return Key{}, fmt.Errorf("key file: %v", err)
	}
	if f.KDF != "scrypt" {
		return Key{}, fmt.Errorf("key file: unknown key derivation %q", f.KDF)
	}
	if f.N <= 1 || f.N&(f.N-1) != 0 || f.R <= 0 || f.P <= 0 || f.P > maxScryptP || int64(f.N)*int64(f.R) > maxScryptMemory/128 || len(f.Salt) == 0 {
		return Key{}, fmt.Errorf("key file: scrypt parameters N=%d r=%d p=%d are out of range", f.N, f.R, f.P)
	}
	user, err := passwordKey(password, f.Salt, ScryptParams{N: f.N, R: f.R, P: f.P})
	if err != nil {
		return Key{}, fmt.Errorf("key file: %v", err)
	}
	plain, err := user.Open(f.Data)
	if errors.Is(err, ErrMAC) {
		return Key{}, ErrWrongPassword
	}
	if err != nil {
		return Key{}, fmt.Errorf("key file: %v", err)
	}
	defer clear(plain)
	return ParseMasterKey(plain)
}

// passwordKey is the key scrypt derives from a password for a key file:
// 64 bytes, the AES-256 key then the Poly1305-AES key k||r.
func passwordKey(password string, salt []byte, p ScryptParams) (Key, error) {
	derived, err := scrypt.Key([]byte(password), salt, p.N, p.R, p.P, 64)
	if err != nil {
		return Key{}, err
	}
	defer clear(derived)
	var k Key
	copy(k.encrypt[:], derived[:32])
	copy(k.macK[:], derived[32:48])
	copy(k.macR[:], derived[48:64])
	return k, nil
}

// OpensConfig reports whether k is the master key the repository's config
// file (as stored, encrypted) was written with. Of several keys that open
// with the same password only that one reads the repository: restic
// picks the first key that opens, and fails on the config with any other
// ("ciphertext verification failed").
func (k Key) OpensConfig(file []byte) bool {
	plain, err := k.Open(file)
	if err != nil {
		return false
	}
	doc, err := Unpack(plain)
	if err != nil {
		return false
	}
	var c struct {
		Version int    `json:"version"`
		ID      string `json:"id"`
	}
	return json.Unmarshal(doc, &c) == nil && c.Version > 0 && c.ID != ""
}
