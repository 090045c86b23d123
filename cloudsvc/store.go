package cloudsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrNotFound and ErrExists are what the admin API turns into 404 and 409.
var (
	ErrNotFound = errors.New("account not found")
	ErrExists   = errors.New("account already exists")
	// ErrQuota is AddUsage refusing an upload that would pass the limit.
	ErrQuota = errors.New("storage quota exceeded")
)

// Account is one player's record. The password itself is never stored in the
// clear: Hash authenticates HTTP requests, Secret (AES-GCM under the server
// key) lets the server open the player's repositories for retention and
// re-keying.
type Account struct {
	User     string    `json:"user"`
	Hash     []byte    `json:"hash"`
	Secret   []byte    `json:"secret"`
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`
	Rotated  time.Time `json:"rotated,omitzero"`
	// Quota is the account's storage limit in bytes: 0 means the server's
	// default (--quota), negative means unlimited.
	Quota int64 `json:"quota,omitempty"`
	// PendingKeyRemovals are old repository keys a rotation could not
	// remove yet (the repository was locked by a client); retention retries.
	PendingKeyRemovals []PendingKey `json:"pending_key_removals,omitempty"`
}

// PendingKey names one restic key left behind by a rotation.
type PendingKey struct {
	Instance string `json:"instance"`
	KeyID    string `json:"key_id"`
}

// InstanceInfo is what the server learned about one repository by reading its
// snapshots; Newest is the snapshot file it was learned from, so the
// information is refreshed only when a push added a snapshot.
type InstanceInfo struct {
	Newest   string    `json:"newest"`
	Label    string    `json:"label,omitempty"`
	Host     string    `json:"host,omitempty"`
	LastPush time.Time `json:"last_push,omitzero"`
}

// Store keeps accounts. The embedded implementation is bbolt (one node);
// PostgreSQL serves several nodes over shared storage (see DESIGN.md,
// "Several nodes"). Both pass the same suite (store_suite_test.go).
type Store interface {
	Create(a Account) error
	Get(user string) (Account, error)
	Put(a Account) error
	Delete(user string) error
	List() ([]Account, error)
	GetInstance(user, id string) (InstanceInfo, bool, error)
	PutInstance(user, id string, info InstanceInfo) error

	// Usage is the bytes counted for user's uploads. AddUsage adds n
	// atomically; a positive n that would take the count past limit (when
	// limit > 0) changes nothing and returns ErrQuota with the count. A
	// negative n gives a reservation back (never below 0). SetUsage replaces
	// the count with what a walk of the repositories found.
	Usage(user string) (int64, error)
	AddUsage(user string, n, limit int64) (int64, error)
	SetUsage(user string, n int64) error

	// Lock takes the named lock, shared by every node of the store, until
	// unlock is called; TryLock takes it only if it is free. Admin calls on
	// one user and retention are serialised with these.
	Lock(ctx context.Context, name string) (unlock func(), err error)
	TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error)

	// Shared reports whether other nodes may use the same store (their
	// in-flight requests are invisible to this process).
	Shared() bool
	Close() error
}

// schemaVersion is bumped whenever the records change shape; Open refuses a
// database written by a newer cloud-svc instead of misreading it.
const schemaVersion = 1

var (
	bucketMeta      = []byte("meta")
	bucketAccounts  = []byte("accounts")
	bucketInstances = []byte("instances")
	bucketUsage     = []byte("usage")
	keySchema       = []byte("schema")
)

type boltStore struct {
	db    *bolt.DB
	locks *localLocks
}

// OpenBoltStore opens (creating if needed) the embedded account database.
func OpenBoltStore(path string) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("account store %s: %w", path, err)
	}
	// The timeout turns a second cloud-svc on the same data directory into a
	// clear error instead of a hang on bbolt's file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("account store %s is in use by another cloud-svc; stop it or use another --data", path)
		}
		return nil, fmt.Errorf("account store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("unreadable schema version %q", v)
			}
			if n > schemaVersion {
				return fmt.Errorf("schema version %d is newer than this cloud-svc understands (%d); run a newer cloud-svc", n, schemaVersion)
			}
		}
		if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketAccounts); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketUsage); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(bucketInstances)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("account store %s: %w", path, err)
	}
	return &boltStore{db: db, locks: newLocalLocks()}, nil
}

func (s *boltStore) Create(a Account) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		if b.Get([]byte(a.User)) != nil {
			return ErrExists
		}
		return putJSON(b, a.User, a)
	})
}

func (s *boltStore) Get(user string) (Account, error) {
	var a Account
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAccounts).Get([]byte(user))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &a)
	})
	return a, err
}

func (s *boltStore) Put(a Account) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		if b.Get([]byte(a.User)) == nil {
			return ErrNotFound
		}
		return putJSON(b, a.User, a)
	})
}

func (s *boltStore) Delete(user string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		if b.Get([]byte(user)) == nil {
			return ErrNotFound
		}
		if err := b.Delete([]byte(user)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsage).Delete([]byte(user)); err != nil {
			return err
		}
		// Forget what we learned about the player's instances too, so a
		// re-created account starts clean.
		ib := tx.Bucket(bucketInstances)
		prefix := []byte(user + "/")
		c := ib.Cursor()
		var keys [][]byte
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := ib.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) List() ([]Account, error) {
	var out []Account
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			var a Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("account %q: %w", k, err)
			}
			out = append(out, a)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out, err
}

func (s *boltStore) GetInstance(user, id string) (InstanceInfo, bool, error) {
	var info InstanceInfo
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketInstances).Get([]byte(user + "/" + id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &info)
	})
	return info, found, err
}

func (s *boltStore) PutInstance(user, id string, info InstanceInfo) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketInstances), user+"/"+id, info)
	})
}

func (s *boltStore) Usage(user string) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = getInt(tx.Bucket(bucketUsage), user)
		return nil
	})
	return n, err
}

func (s *boltStore) AddUsage(user string, n, limit int64) (int64, error) {
	var used int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAccounts).Get([]byte(user)) == nil {
			return ErrNotFound
		}
		b := tx.Bucket(bucketUsage)
		used = getInt(b, user)
		if n > 0 && limit > 0 && used+n > limit {
			return ErrQuota
		}
		used = max(used+n, 0)
		return b.Put([]byte(user), []byte(strconv.FormatInt(used, 10)))
	})
	return used, err
}

func (s *boltStore) SetUsage(user string, n int64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAccounts).Get([]byte(user)) == nil {
			return ErrNotFound
		}
		return tx.Bucket(bucketUsage).Put([]byte(user), []byte(strconv.FormatInt(max(n, 0), 10)))
	})
}

func getInt(b *bolt.Bucket, key string) int64 {
	n, _ := strconv.ParseInt(string(b.Get([]byte(key))), 10, 64)
	return n
}

// One process holds the bbolt file, so its locks are in-process.
func (s *boltStore) Lock(ctx context.Context, name string) (func(), error) {
	return s.locks.lock(ctx, name)
}

func (s *boltStore) TryLock(ctx context.Context, name string) (func(), bool, error) {
	unlock, ok := s.locks.tryLock(name)
	return unlock, ok, nil
}

func (s *boltStore) Shared() bool { return false }

func (s *boltStore) Close() error { return s.db.Close() }

// localLocks are named mutexes that honour a context while waiting.
type localLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when released
}

func newLocalLocks() *localLocks { return &localLocks{held: map[string]chan struct{}{}} }

func (l *localLocks) tryLock(name string) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[name]; busy {
		return nil, false
	}
	ch := make(chan struct{})
	l.held[name] = ch
	return func() {
		l.mu.Lock()
		delete(l.held, name)
		l.mu.Unlock()
		close(ch)
	}, true
}

func (l *localLocks) lock(ctx context.Context, name string) (func(), error) {
	for {
		if unlock, ok := l.tryLock(name); ok {
			return unlock, nil
		}
		l.mu.Lock()
		ch := l.held[name]
		l.mu.Unlock()
		if ch == nil {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// cachingStore remembers accounts briefly for authentication, which reads
// one on every request: a PostgreSQL round trip (or a bbolt read and a JSON
// decode) per request would cost the data plane more than rest-server's own
// work. Admin operations read the store itself (a read-modify-write must
// not start from a stale copy); every write through this node drops the
// copy at once, so only other nodes' changes wait up to ttl.
type cachingStore struct {
	Store
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedAccount
}

type cachedAccount struct {
	a   Account
	err error
	at  time.Time
}

func newCachingStore(s Store, ttl time.Duration) *cachingStore {
	return &cachingStore{Store: s, ttl: ttl, m: map[string]cachedAccount{}}
}

// cachedGet is Get, answered from memory while the copy is younger than ttl
// (an unknown user's ErrNotFound too, so probing names costs no round trip).
func (c *cachingStore) cachedGet(user string, now time.Time) (Account, error) {
	if c.ttl <= 0 {
		return c.Store.Get(user)
	}
	c.mu.Lock()
	e, ok := c.m[user]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl && now.Sub(e.at) >= 0 {
		return e.a, e.err
	}
	a, err := c.Store.Get(user)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return a, err
	}
	c.mu.Lock()
	if len(c.m) >= 10000 {
		clear(c.m)
	}
	c.m[user] = cachedAccount{a: a, err: err, at: now}
	c.mu.Unlock()
	return a, err
}

func (c *cachingStore) forget(user string) {
	c.mu.Lock()
	delete(c.m, user)
	c.mu.Unlock()
}

func (c *cachingStore) Create(a Account) error {
	defer c.forget(a.User)
	return c.Store.Create(a)
}

func (c *cachingStore) Put(a Account) error {
	defer c.forget(a.User)
	return c.Store.Put(a)
}

func (c *cachingStore) Delete(user string) error {
	defer c.forget(user)
	return c.Store.Delete(user)
}
