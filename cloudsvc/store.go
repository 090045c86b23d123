package cloudsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrNotFound and ErrExists are what the admin API turns into 404 and 409.
var (
	ErrNotFound = errors.New("account not found")
	ErrExists   = errors.New("account already exists")
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

// Store keeps accounts. The embedded implementation is bbolt; a PostgreSQL
// one would satisfy the same interface for several nodes (see
// DESIGN-section.md).
type Store interface {
	Create(a Account) error
	Get(user string) (Account, error)
	Put(a Account) error
	Delete(user string) error
	List() ([]Account, error)
	GetInstance(user, id string) (InstanceInfo, bool, error)
	PutInstance(user, id string, info InstanceInfo) error
	Close() error
}

// schemaVersion is bumped whenever the records change shape; Open refuses a
// database written by a newer cloud-svc instead of misreading it.
const schemaVersion = 1

var (
	bucketMeta      = []byte("meta")
	bucketAccounts  = []byte("accounts")
	bucketInstances = []byte("instances")
	keySchema       = []byte("schema")
)

type boltStore struct {
	db *bolt.DB
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
		_, err = tx.CreateBucketIfNotExists(bucketInstances)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("account store %s: %w", path, err)
	}
	return &boltStore{db: db}, nil
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

func (s *boltStore) Close() error { return s.db.Close() }

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
