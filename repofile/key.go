package repofile

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"

	// Deprecated for general use; Poly1305-AES is what restic's format
	// specifies, and Open derives the one-time key from AES as it must.
	//lint:ignore SA1019 restic's file format is Poly1305-AES
	"golang.org/x/crypto/poly1305"
)

// ErrMAC means a file does not authenticate with the key: the key belongs
// to another repository (it was deleted and created again) or the file was
// damaged on the way.
var ErrMAC = errors.New("file does not authenticate with the repository's master key")

const (
	ivSize  = aes.BlockSize
	macSize = poly1305.TagSize
	// overhead is what encryption adds to a file: the IV in front, the MAC
	// at the end.
	overhead = ivSize + macSize
)

// Key is a repository's master key: the AES-256 key that encrypts every
// file and the two halves of its Poly1305-AES key. It is the secret that
// unlocks the whole repository; its String never shows it.
type Key struct {
	encrypt [32]byte
	macK    [16]byte // AES-128 key that turns each IV into Poly1305's s
	macR    [16]byte // Poly1305's r, clamped by poly1305 itself
}

// keyJSON is the shape "restic cat masterkey" prints; base64 in the
// standard alphabet, which is how encoding/json writes []byte.
type keyJSON struct {
	MAC struct {
		K []byte `json:"k"`
		R []byte `json:"r"`
	} `json:"mac"`
	Encrypt []byte `json:"encrypt"`
}

// ParseMasterKey reads the JSON that "restic cat masterkey" prints (and
// that MarshalJSON writes back).
func ParseMasterKey(data []byte) (Key, error) {
	var j keyJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Key{}, fmt.Errorf("master key: %v", err)
	}
	var k Key
	for _, f := range []struct {
		name string
		dst  []byte
		src  []byte
	}{
		{"encrypt", k.encrypt[:], j.Encrypt},
		{"mac.k", k.macK[:], j.MAC.K},
		{"mac.r", k.macR[:], j.MAC.R},
	} {
		if len(f.src) == 0 {
			return Key{}, fmt.Errorf("master key: %s is missing", f.name)
		}
		if len(f.src) != len(f.dst) {
			return Key{}, fmt.Errorf("master key: %s is %d bytes, want %d", f.name, len(f.src), len(f.dst))
		}
		copy(f.dst, f.src)
	}
	if k == (Key{}) {
		return Key{}, errors.New("master key: all zero")
	}
	return k, nil
}

// MarshalJSON writes the key in the shape of "restic cat masterkey", so a
// cached copy reads back with ParseMasterKey.
func (k Key) MarshalJSON() ([]byte, error) {
	var j keyJSON
	j.MAC.K = k.macK[:]
	j.MAC.R = k.macR[:]
	j.Encrypt = k.encrypt[:]
	return json.Marshal(j)
}

// UnmarshalJSON is ParseMasterKey, so a Key can sit in a larger document.
func (k *Key) UnmarshalJSON(data []byte) error {
	// null leaves the key alone, as encoding/json does for other types.
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	parsed, err := ParseMasterKey(data)
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}

// String keeps the key out of logs and error messages.
func (Key) String() string { return "repofile.Key(secret)" }

// GoString keeps the key out of %#v.
func (k Key) GoString() string { return k.String() }

// Open authenticates and decrypts one repository file (IV || ciphertext ||
// MAC) and returns the plaintext. The MAC is checked, in constant time,
// before anything is decrypted; a file that fails gives ErrMAC.
func (k Key) Open(file []byte) ([]byte, error) {
	if len(file) < overhead {
		return nil, fmt.Errorf("file is %d bytes, shorter than the %d bytes of IV and MAC", len(file), overhead)
	}
	iv := file[:ivSize]
	ct := file[ivSize : len(file)-macSize]
	var tag [macSize]byte
	copy(tag[:], file[len(file)-macSize:])

	// Poly1305-AES: the one-time key is r || AES_k(IV).
	macBlock, err := aes.NewCipher(k.macK[:])
	if err != nil {
		return nil, err
	}
	var otk [32]byte
	copy(otk[:16], k.macR[:])
	macBlock.Encrypt(otk[16:], iv)
	ok := poly1305.Verify(&tag, ct, &otk)
	clear(otk[:])
	if !ok {
		return nil, ErrMAC
	}

	block, err := aes.NewCipher(k.encrypt[:])
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(ct))
	cipher.NewCTR(block, iv).XORKeyStream(plain, ct)
	return plain, nil
}
