package cloudsvc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/testpg"
)

func TestMain(m *testing.M) {
	// The instance-sync runs of these tests inherit this environment: init
	// keeps tokens in the config folder, which must not be the real one.
	cfg, err := os.MkdirTemp("", "cloudsvc-test-config-")
	if err == nil {
		os.Setenv("XDG_CONFIG_HOME", cfg)
	}
	code := m.Run()
	testpg.StopShared()
	if err == nil {
		os.RemoveAll(cfg)
	}
	os.Exit(code)
}

// newPGStore opens a store on a fresh database of the shared test server
// and returns a function that opens further handles on the same database
// (what other nodes would do).
func newPGStore(t testing.TB) (Store, func() Store) {
	t.Helper()
	pg := testpg.Shared(t)
	dsn := pg.NewDatabase(t)
	open := func() Store {
		t.Helper()
		s, err := OpenPostgresStore(context.Background(), dsn, pg.Password)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open
}

// storeImpls are the Store implementations the suite runs against. node2
// opens a second handle on the same data where the store allows it (a second
// node), or returns the first handle.
var storeImpls = []struct {
	name string
	open func(t *testing.T) (s Store, node2 func() Store)
}{
	{"bbolt", func(t *testing.T) (Store, func() Store) {
		s, err := OpenBoltStore(filepath.Join(t.TempDir(), "accounts.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, func() Store { return s }
	}},
	{"postgres", func(t *testing.T) (Store, func() Store) { return newPGStore(t) }},
}

// TestStore is the one suite both implementations must pass.
func TestStore(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range storeCases {
				t.Run(tc.name, func(t *testing.T) {
					s, node2 := impl.open(t)
					tc.run(t, s, node2)
				})
			}
		})
	}
}

// µs precision: PostgreSQL's timestamptz keeps microseconds.
var t0 = time.Date(2026, 3, 1, 12, 30, 45, 123456000, time.UTC)

func sampleAccount(user string) Account {
	return Account{User: user, Hash: []byte("hash-" + user), Secret: []byte{0, 1, 2, 255}, Created: t0}
}

func sameAccount(t *testing.T, got, want Account) {
	t.Helper()
	if !got.Created.Equal(want.Created) || !got.Rotated.Equal(want.Rotated) {
		t.Errorf("times: got %v/%v, want %v/%v", got.Created, got.Rotated, want.Created, want.Rotated)
	}
	got.Created, got.Rotated, want.Created, want.Rotated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("account:\n got %+v\nwant %+v", got, want)
	}
}

var storeCases = []struct {
	name string
	run  func(t *testing.T, s Store, node2 func() Store)
}{
	{"CreateGetExists", func(t *testing.T, s Store, _ func() Store) {
		a := sampleAccount("alice")
		a.Quota = 10e9
		if err := s.Create(a); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get("alice")
		if err != nil {
			t.Fatal(err)
		}
		sameAccount(t, got, a)
		if err := s.Create(sampleAccount("alice")); !errors.Is(err, ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
	}},
	{"NotFound", func(t *testing.T, s Store, _ func() Store) {
		if _, err := s.Get("nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("get: %v", err)
		}
		if err := s.Put(sampleAccount("nobody")); !errors.Is(err, ErrNotFound) {
			t.Errorf("put: %v", err)
		}
		if err := s.Delete("nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete: %v", err)
		}
		if _, err := s.AddUsage("nobody", 1, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("add usage: %v", err)
		}
		if err := s.SetUsage("nobody", 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("set usage: %v", err)
		}
	}},
	{"PutUpdates", func(t *testing.T, s Store, node2 func() Store) {
		a := sampleAccount("bob")
		if err := s.Create(a); err != nil {
			t.Fatal(err)
		}
		a.Disabled = true
		a.Rotated = t0.Add(time.Hour)
		a.Hash = []byte("new hash")
		a.Quota = -1
		a.PendingKeyRemovals = []PendingKey{{Instance: "i1", KeyID: "k1"}, {Instance: "i2", KeyID: "k2"}}
		if err := s.Put(a); err != nil {
			t.Fatal(err)
		}
		got, err := node2().Get("bob")
		if err != nil {
			t.Fatal(err)
		}
		sameAccount(t, got, a)
		a.PendingKeyRemovals = nil
		if err := s.Put(a); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Get("bob")
		sameAccount(t, got, a)
	}},
	{"ListSorted", func(t *testing.T, s Store, _ func() Store) {
		if l, err := s.List(); err != nil || len(l) != 0 {
			t.Fatalf("empty list: %v %v", l, err)
		}
		for _, u := range []string{"carol", "alice", "bob"} {
			if err := s.Create(sampleAccount(u)); err != nil {
				t.Fatal(err)
			}
		}
		l, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range l {
			names = append(names, a.User)
		}
		if strings.Join(names, ",") != "alice,bob,carol" {
			t.Fatalf("list %v", names)
		}
	}},
	{"InstanceCache", func(t *testing.T, s Store, node2 func() Store) {
		if err := s.Create(sampleAccount("dave")); err != nil {
			t.Fatal(err)
		}
		if _, found, err := s.GetInstance("dave", "i1"); found || err != nil {
			t.Fatalf("missing instance: found=%v %v", found, err)
		}
		info := InstanceInfo{Newest: "abc", Label: "Survival", Host: "desk", LastPush: t0}
		if err := s.PutInstance("dave", "i1", info); err != nil {
			t.Fatal(err)
		}
		info.Newest, info.Label = "def", "Creative"
		if err := s.PutInstance("dave", "i1", info); err != nil {
			t.Fatal(err)
		}
		got, found, err := node2().GetInstance("dave", "i1")
		if err != nil || !found || got.Newest != "def" || got.Label != "Creative" || got.Host != "desk" || !got.LastPush.Equal(t0) {
			t.Fatalf("instance: %+v %v %v", got, found, err)
		}
		// Deleting the account forgets its instances and usage.
		if _, err := s.AddUsage("dave", 500, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete("dave"); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(sampleAccount("dave")); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := s.GetInstance("dave", "i1"); found {
			t.Error("instance info survived the account's deletion")
		}
		if n, err := s.Usage("dave"); n != 0 || err != nil {
			t.Errorf("usage after re-creation: %d %v", n, err)
		}
	}},
	{"UsageLimit", func(t *testing.T, s Store, _ func() Store) {
		if err := s.Create(sampleAccount("erin")); err != nil {
			t.Fatal(err)
		}
		if n, err := s.AddUsage("erin", 60, 100); n != 60 || err != nil {
			t.Fatalf("add 60: %d %v", n, err)
		}
		if n, err := s.AddUsage("erin", 41, 100); n != 60 || !errors.Is(err, ErrQuota) {
			t.Fatalf("add 41 past 100: %d %v, want 60 ErrQuota", n, err)
		}
		if n, err := s.AddUsage("erin", 40, 100); n != 100 || err != nil {
			t.Fatalf("add 40 up to 100: %d %v", n, err)
		}
		if n, err := s.AddUsage("erin", -30, 100); n != 70 || err != nil {
			t.Fatalf("release 30: %d %v", n, err)
		}
		if n, err := s.AddUsage("erin", 1000, 0); n != 1070 || err != nil {
			t.Fatalf("add without limit: %d %v", n, err)
		}
		if n, err := s.AddUsage("erin", -5000, 0); n != 0 || err != nil {
			t.Fatalf("release below 0: %d %v", n, err)
		}
		if err := s.SetUsage("erin", 1234); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Usage("erin"); n != 1234 || err != nil {
			t.Fatalf("usage after set: %d %v", n, err)
		}
	}},
	{"UsageConcurrentNodes", func(t *testing.T, s Store, node2 func() Store) {
		if err := s.Create(sampleAccount("fay")); err != nil {
			t.Fatal(err)
		}
		nodes := []Store{s, node2()}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			accepted int
		)
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := nodes[i%2].AddUsage("fay", 10, 100)
				if err != nil && !errors.Is(err, ErrQuota) {
					t.Error(err)
				}
				if err == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if n, _ := s.Usage("fay"); accepted != 10 || n != 100 {
			t.Fatalf("%d uploads accepted, usage %d; want 10 and 100", accepted, n)
		}
	}},
	{"Locks", func(t *testing.T, s Store, node2 func() Store) {
		ctx := context.Background()
		other := node2()
		unlock, ok, err := s.TryLock(ctx, "retention")
		if err != nil || !ok {
			t.Fatalf("first try: %v %v", ok, err)
		}
		if _, ok, err := other.TryLock(ctx, "retention"); ok || err != nil {
			t.Fatalf("second try while held: %v %v", ok, err)
		}
		// Another name is independent.
		u2, ok, err := other.TryLock(ctx, "user:alice")
		if err != nil || !ok {
			t.Fatalf("other name: %v %v", ok, err)
		}
		u2()
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if _, err := other.Lock(short, "retention"); err == nil {
			t.Fatal("Lock returned while the lock was held elsewhere")
		}
		got := make(chan func(), 1)
		go func() {
			u, err := other.Lock(ctx, "retention")
			if err != nil {
				t.Error(err)
				u = func() {}
			}
			got <- u
		}()
		select {
		case <-got:
			t.Fatal("Lock did not wait")
		case <-time.After(100 * time.Millisecond):
		}
		unlock()
		select {
		case u := <-got:
			u()
		case <-time.After(30 * time.Second):
			t.Fatal("Lock not granted after unlock")
		}
		if u, ok, _ := s.TryLock(ctx, "retention"); !ok {
			t.Fatal("not free after the waiter unlocked")
		} else {
			u()
		}
	}},
}

func TestPostgresRefusesNewerSchema(t *testing.T) {
	pg := testpg.Shared(t)
	dsn := pg.NewDatabase(t)
	s, err := OpenPostgresStore(context.Background(), dsn, pg.Password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.(*pgStore).pool.Exec(context.Background(), `UPDATE cloudsvc_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenPostgresStore(context.Background(), dsn, pg.Password); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open newer schema: %v", err)
	}
}

// TestPostgresMigratesOnce: nodes starting together on an empty database
// all come up on one schema.
func TestPostgresMigratesOnce(t *testing.T) {
	pg := testpg.Shared(t)
	dsn := pg.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgresStore(context.Background(), dsn, pg.Password)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestCheckPostgresURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"postgres://cloudsvc@db.internal:5432/cloudsvc":               true,
		"postgresql://cloudsvc@db/cloudsvc?sslmode=verify-full":       true,
		"postgres://cloudsvc:hunter2@db/cloudsvc":                     false,
		"postgres://cloudsvc@db/cloudsvc?password=hunter2&sslmode=no": false,
	} {
		err := CheckPostgresURL(url)
		if (err == nil) != ok {
			t.Errorf("%s: %v", url, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
}
