package cloudsvc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/atomicfile"
)

// loadOrCreateSecretFile returns the trimmed content of path, creating it
// with a fresh random value (mode 0600) when it does not exist yet.
func loadOrCreateSecretFile(path string, fresh func() (string, error)) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(data))
		if v == "" {
			return "", fmt.Errorf("%s is empty; delete it to have a new one generated", path)
		}
		return v, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v, err := fresh()
	if err != nil {
		return "", err
	}
	// Several nodes may start at once on one shared data directory: the
	// file is staged and linked into place, which fails if another node
	// was first, and then that node's value is the one everybody uses.
	tmp, err := atomicfile.Stage(path, []byte(v+"\n"), 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	defer atomicfile.Discard(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return loadOrCreateSecretFile(path, fresh)
		}
		// No hard links (some filesystems): fall back to a rename.
		if err := atomicfile.Commit(tmp, path); err != nil {
			return "", fmt.Errorf("create %s: %w", path, err)
		}
	}
	return v, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	// base64url has no ':' so a password never breaks the "user:password"
	// token format.
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func newServerKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// sealer encrypts repository passwords with the server key so retention and
// re-keying can open repositories while a stolen accounts.db alone cannot.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(hexKey string) (*sealer, error) {
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) != 32 {
		return nil, errors.New("server key is not 64 hex digits; restore server.key from backup")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// aad binds a ciphertext to its account so one player's sealed password
// cannot be copied onto another record.
func aad(user string) []byte { return []byte("cloud-svc/v1/" + user) }

func (s *sealer) seal(user, secret string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(secret), aad(user)), nil
}

func (s *sealer) open(user string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", fmt.Errorf("sealed password of %s is truncated", user)
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad(user))
	if err != nil {
		return "", fmt.Errorf("cannot decrypt the repository password of %s; is server.key the one the account was created with?", user)
	}
	return string(pt), nil
}

// authCache remembers recent successful bcrypt checks: restic makes many
// requests per run, and bcrypt on each would cost tens of milliseconds.
// The key covers the stored hash too, so a rotated password misses the cache
// without any invalidation (which also holds across several nodes).
type authCache struct {
	mac     []byte
	ttl     time.Duration
	max     int
	mu      sync.Mutex
	entries map[[32]byte]time.Time
}

func newAuthCache(ttl time.Duration) (*authCache, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return &authCache{mac: k, ttl: ttl, max: 10000, entries: map[[32]byte]time.Time{}}, nil
}

func (c *authCache) key(user, password string, hash []byte) [32]byte {
	m := hmac.New(sha256.New, c.mac)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	m.Write([]byte{0})
	m.Write(hash)
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (c *authCache) ok(user, password string, hash []byte, now time.Time) bool {
	if c.ttl <= 0 {
		return false
	}
	k := c.key(user, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, found := c.entries[k]
	if found && now.Before(exp) {
		return true
	}
	if found {
		delete(c.entries, k)
	}
	return false
}

func (c *authCache) add(user, password string, hash []byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	k := c.key(user, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, exp := range c.entries {
			if !now.Before(exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			// Every entry is live: start over rather than grow without bound.
			clear(c.entries)
		}
	}
	c.entries[k] = now.Add(c.ttl)
}
