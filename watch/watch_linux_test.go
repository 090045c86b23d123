package watch

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// folder lays out a small instance and returns it with the digest of its
// scope, as the last sync would have recorded it.
func folder(t *testing.T) (string, scope.Scope, Base) {
	t.Helper()
	pack := t.TempDir()
	for name, data := range map[string]string{
		"options.txt":                      "fov:90",
		"saves/World/level.dat":            "level",
		"saves/World/region/r.0.0.mca":     "region",
		"saves/World/playerdata/p.dat":     "player",
		"saves/World/session.lock":         "lock",
		"logs/latest.log":                  "log",
		"mods/a.jar":                       "jar",
		"screenshots/2026-11-25_10.00.png": "png",
	} {
		p := filepath.Join(pack, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sc := scope.New(scope.Overrides{})
	m, err := sc.Walk(pack)
	if err != nil {
		t.Fatal(err)
	}
	return pack, sc, Base{Last: "snap1", Digest: m.Digest(), Scope: sc.Fingerprint()}
}

// answerBound is how long a test waits for a watcher that is expected to
// answer or end: far longer than it takes, so that only a watcher that
// never does fails (a loaded machine can stall one for seconds).
const answerBound = time.Minute

// serve starts a watcher and waits until it answers.
func serve(t *testing.T, pack string, sc scope.Scope, b Base) chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- Serve(pack, sc, b, time.Hour) }()
	deadline := time.Now().Add(answerBound)
	for {
		got, err := Query(pack, Ping, time.Second)
		if err == nil {
			if got != b {
				t.Fatalf("watcher answers base %+v, want %+v", got, b)
			}
			return done
		}
		select {
		case err := <-done:
			t.Fatalf("watcher ended before answering: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher never answered: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ended(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(answerBound):
		t.Fatal("watcher still running")
		return nil
	}
}

func TestQueryWithoutWatcher(t *testing.T) {
	if _, err := Query(t.TempDir(), Ping, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Query = %v, want ErrNotRunning", err)
	}
}

func TestCleanUntilQuit(t *testing.T) {
	pack, sc, b := folder(t)
	done := serve(t, pack, sc, b)
	// Outside the scope, or excluded inside it: no change that matters.
	for _, name := range []string{"logs/latest.log", "mods/b.jar", "saves/World/session.lock", "saves/World/level.dat_old", ".cloud-sync/state.json"} {
		p := filepath.Join(pack, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Reading is not a change.
	if _, err := os.ReadFile(filepath.Join(pack, "saves/World/region/r.0.0.mca")); err != nil {
		t.Fatal(err)
	}
	got, err := Query(pack, Quit, answerBound)
	if err != nil || got != b {
		t.Fatalf("Query(Quit) = %+v, %v; want %+v", got, err, b)
	}
	if err := ended(t, done); err != nil {
		t.Fatalf("Serve after Quit = %v, want nil", err)
	}
	if _, err := Query(pack, Ping, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Query after Quit = %v, want ErrNotRunning", err)
	}
}

func TestChangesInScope(t *testing.T) {
	for name, change := range map[string]func(pack string) error{
		"region rewritten in place": func(pack string) error {
			f, err := os.OpenFile(filepath.Join(pack, "saves/World/region/r.0.0.mca"), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt([]byte("R"), 0); err != nil {
				return err
			}
			return f.Close()
		},
		"file added": func(pack string) error {
			return os.WriteFile(filepath.Join(pack, "saves/World/playerdata/q.dat"), nil, 0o644)
		},
		"file deleted": func(pack string) error {
			return os.Remove(filepath.Join(pack, "options.txt"))
		},
		"mode changed": func(pack string) error {
			return os.Chmod(filepath.Join(pack, "saves/World/level.dat"), 0o600)
		},
		"mtime changed": func(pack string) error {
			return os.Chtimes(filepath.Join(pack, "options.txt"), time.Time{}, time.Unix(1e9, 0))
		},
		"world renamed": func(pack string) error {
			return os.Rename(filepath.Join(pack, "saves/World"), filepath.Join(pack, "saves/World 2"))
		},
		"folder in scope created": func(pack string) error {
			return os.Mkdir(filepath.Join(pack, "schematics"), 0o755)
		},
		"scope folder deleted": func(pack string) error {
			return os.RemoveAll(filepath.Join(pack, "screenshots"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			pack, sc, b := folder(t)
			done := serve(t, pack, sc, b)
			if err := change(pack); err != nil {
				t.Fatal(err)
			}
			// The watcher may read the change before the query (and be
			// gone) or while answering it: either way, never clean. The
			// long bound keeps a slow clean answer from passing as an
			// error.
			if got, err := Query(pack, Quit, answerBound); err == nil {
				t.Fatalf("Query after the change = clean %+v", got)
			}
			if err := ended(t, done); !errors.Is(err, ErrChanged) {
				t.Fatalf("Serve = %v, want ErrChanged", err)
			}
		})
	}
}

// A change the watcher reads on its own (no client asking) ends it too.
func TestEndsAtFirstChange(t *testing.T) {
	pack, sc, b := folder(t)
	done := serve(t, pack, sc, b)
	if err := os.WriteFile(filepath.Join(pack, "servers.dat"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ended(t, done); !errors.Is(err, ErrChanged) {
		t.Fatalf("Serve = %v, want ErrChanged", err)
	}
}

// Files that already differ from the last sync: no watcher at all.
func TestStaleBase(t *testing.T) {
	pack, sc, b := folder(t)
	b.Digest = "0000"
	if err := Serve(pack, sc, b, time.Hour); !errors.Is(err, ErrChanged) {
		t.Fatalf("Serve = %v, want ErrChanged", err)
	}
}

func TestOneWatcherPerFolder(t *testing.T) {
	pack, sc, b := folder(t)
	done := serve(t, pack, sc, b)
	if err := Serve(pack, sc, b, time.Hour); err == nil || errors.Is(err, ErrChanged) {
		t.Fatalf("second Serve = %v, want a bind error", err)
	}
	if _, err := Query(pack, Quit, answerBound); err != nil {
		t.Fatal(err)
	}
	if err := ended(t, done); err != nil {
		t.Fatal(err)
	}
}

// A watcher with nothing to report serves until its max age, then ends
// by itself without an error, and no longer answers.
func TestMaxAge(t *testing.T) {
	pack, sc, b := folder(t)
	const maxAge = 3 * time.Second
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- Serve(pack, sc, b, maxAge) }()
	var answered bool
	for !answered {
		select {
		case err := <-done:
			t.Fatalf("Serve returned %v after %v, before it ever answered", err, time.Since(start))
		default:
		}
		got, err := Query(pack, Ping, time.Second)
		answered = err == nil && got == b
		time.Sleep(10 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil after its max age", err)
	}
	if d := time.Since(start); d < maxAge {
		t.Fatalf("Serve returned after %v, before its max age of %v", d, maxAge)
	}
	if _, err := Query(pack, Ping, time.Second); err == nil {
		t.Fatal("a watcher past its max age still answers")
	}
}

// A watcher whose pack folder is deleted or moved away (it, or a folder
// above it) ends: it has nothing left to watch there, and would otherwise
// run until its max age. Moving a folder above the pack folder touches no
// watched folder, so no event says so.
func TestEndsWhenFolderVanishes(t *testing.T) {
	defer func(d time.Duration) { checkEvery = d }(checkEvery)
	checkEvery = 50 * time.Millisecond
	for name, vanish := range map[string]func(pack string) error{
		"deleted": os.RemoveAll,
		"moved away": func(pack string) error {
			return os.Rename(pack, pack+"-old")
		},
		"a folder above moved away": func(pack string) error {
			return os.Rename(filepath.Dir(pack), filepath.Dir(pack)+"-old")
		},
		"deleted and made again": func(pack string) error {
			if err := os.Rename(pack, pack+"-old"); err != nil {
				return err
			}
			return os.Mkdir(pack, 0o755)
		},
	} {
		t.Run(name, func(t *testing.T) {
			made, sc, b := folder(t)
			// The pack folder inside a launcher's instances folder.
			pack := filepath.Join(t.TempDir(), "instances", "pack")
			if err := os.MkdirAll(filepath.Dir(pack), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(made, pack); err != nil {
				t.Fatal(err)
			}
			done := serve(t, pack, sc, b)
			if err := vanish(pack); err != nil {
				t.Fatal(err)
			}
			if err := ended(t, done); !errors.Is(err, ErrChanged) {
				t.Fatalf("Serve = %v, want ErrChanged", err)
			}
		})
	}
}
