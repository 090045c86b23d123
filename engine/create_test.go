package engine

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/repofile"
)

// TestFirstPushCreatesTheRepository: a first push writes the repository
// itself, with no "restic init" (about two seconds of key-derivation
// timing), and what it writes is a repository restic reads and checks:
// one key, of restic's cost, whose id the state names, and a config of
// format 2.
func TestFirstPushCreatesTheRepository(t *testing.T) {
	r := newFreshRig(t)
	r.push()
	runs, _ := r.since(0)
	if len(runs) != 1 || !strings.Contains(runs[0], " backup ") {
		t.Errorf("restic runs of a first push: %q, want one backup", runs)
	}

	st := r.state()
	out, err := r.restic("key", "list", "--json").Output()
	if err != nil {
		t.Fatalf("restic key list: %v\n%s", err, out)
	}
	var keys []struct {
		ID       string `json:"id"`
		Current  bool   `json:"current"`
		HostName string `json:"hostName"`
	}
	if err := json.Unmarshal(out, &keys); err != nil || len(keys) != 1 {
		t.Fatalf("restic key list: %v\n%s", err, out)
	}
	if host, _ := os.Hostname(); !strings.HasPrefix(st.KeyHint, keys[0].ID) || keys[0].HostName != host {
		t.Errorf("key %+v, state's key %q, host %q", keys[0], st.KeyHint, host)
	}
	var kf struct {
		KDF     string `json:"kdf"`
		N, R, P int
		Salt    []byte `json:"salt"`
	}
	raw, err := os.ReadFile(filepath.Join(r.repo, "keys", st.KeyHint))
	if err != nil || json.Unmarshal(raw, &kf) != nil {
		t.Fatalf("key file: %v\n%s", err, raw)
	}
	if kf.KDF != "scrypt" || kf.N != 1<<15 && !raceEnabled || kf.R != 8 || kf.P < 1 || len(kf.Salt) != 64 {
		t.Errorf("key file's cost: %+v, want restic's (scrypt N=32768 r=8, a 64-byte salt)", kf)
	}

	out, err = r.restic("cat", "config").Output()
	var cfg struct {
		Version int    `json:"version"`
		ID      string `json:"id"`
		Pol     string `json:"chunker_polynomial"`
	}
	if err != nil || json.Unmarshal(out, &cfg) != nil || cfg.Version != 2 || len(cfg.ID) != 64 || cfg.Pol == "" {
		t.Fatalf("restic cat config: %v\n%s", err, out)
	}
	if out, err := r.restic("check", "--read-data").CombinedOutput(); err != nil {
		t.Fatalf("restic check: %v\n%s", err, out)
	}
	// The master key is cached as restic would have given it.
	out, err = r.restic("cat", "masterkey").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, err := repofile.ParseMasterKey(out)
	if err != nil {
		t.Fatal(err)
	}
	icfg, err := instance.Paths{Pack: r.pack}.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cached, err := os.ReadFile(r.opt.UserDirs.MasterKeyFile(icfg))
	if err != nil {
		t.Fatalf("master key not cached: %v", err)
	}
	if got, err := repofile.ParseMasterKey(cached); err != nil || got != want {
		t.Errorf("cached master key is not the repository's (%v)", err)
	}
	r.pulledBy("v1")
}

// TestFirstPushLosesTheInitRace: another computer creates the repository
// between this push's listing (no repository) and its config. The server
// refuses the second config; the push then uses the repository that won,
// with the key that opens its config, and this computer's key stays
// unused.
func TestFirstPushLosesTheInitRace(t *testing.T) {
	r := newFreshRig(t)
	var fired atomic.Bool // the other computer's own config comes through here too
	r.srv.SetHook(func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/config") && req.Header.Get("User-Agent") == "instance-sync" {
			if fired.CompareAndSwap(false, true) {
				// The other computer writes its key and config first.
				other, err := repofile.CreateRepository(earlyPassword, repofile.ScryptParams{N: 1 << 15, R: 8, P: 1}, "bob", "b", time.Now())
				if err != nil {
					t.Error(err)
					return false
				}
				ctx := context.Background()
				if err := r.server.SaveFile(ctx, r.id, "keys/"+other.KeyID, other.KeyFile); err != nil {
					t.Error(err)
				}
				if err := r.server.SaveFile(ctx, r.id, "config", other.Config); err != nil {
					t.Error(err)
				}
			}
		}
		return false
	})
	res := r.push()
	r.srv.SetHook(nil)
	if !strings.Contains(r.log.String(), "another computer created the cloud repository") {
		t.Errorf("the push did not say it joined the other repository:\n%s", r.log.String())
	}
	ents, err := os.ReadDir(filepath.Join(r.repo, "keys"))
	if err != nil || len(ents) != 2 {
		t.Fatalf("keys/: %d entries, %v; want this computer's and the other's", len(ents), err)
	}
	// The state names the winner's key: the one that opens the config.
	st := r.state()
	config, err := os.ReadFile(filepath.Join(r.repo, "config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		file, err := os.ReadFile(filepath.Join(r.repo, "keys", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		master, err := repofile.OpenKeyFile(file, earlyPassword)
		if err != nil {
			t.Fatalf("key %s: %v", e.Name(), err)
		}
		if opens := master.OpensConfig(config); opens != (e.Name() == st.KeyHint) {
			t.Errorf("key %s opens the config: %v; the state's key is %q", e.Name(), opens, st.KeyHint)
		}
	}
	if out, err := r.restic("--key-hint", st.KeyHint, "check").CombinedOutput(); err != nil {
		t.Fatalf("restic check: %v\n%s", err, out)
	}
	if st.Last != res.Snapshot {
		t.Errorf("state's last sync %q, pushed %q", st.Last, res.Snapshot)
	}
	r.pulledBy("v1")
}

// TestFirstPushCreationFaults: the server fails one request of the
// repository's creation: the folders, the key or the config, either
// before writing it or after (the answer lost on the way). The push fails
// with the server's answer and a way out, and the next push leaves a
// repository restic checks, with the state naming the key that opens its
// config, which another computer pulls from.
func TestFirstPushCreationFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		path    string // the request that fails: its path's end
		written bool   // the server wrote it before failing
	}{
		{"folders", "/?create=true", false},
		{"key", "/keys/", false},
		{"key written", "/keys/", true},
		{"config", "/config", false},
		{"config written", "/config", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFreshRig(t)
			var failed atomic.Bool
			r.srv.SetHook(func(w http.ResponseWriter, req *http.Request) bool {
				target := req.URL.Path
				if req.URL.RawQuery != "" {
					target += "?" + req.URL.RawQuery
				}
				if req.Method != http.MethodPost || req.Header.Get("User-Agent") != "instance-sync" {
					return false
				}
				if tc.path == "/keys/" && !strings.Contains(target, "/keys/") || tc.path != "/keys/" && !strings.HasSuffix(target, tc.path) {
					return false
				}
				if !failed.CompareAndSwap(false, true) {
					return false
				}
				if tc.written {
					body, err := io.ReadAll(req.Body)
					name := filepath.Join(r.srv.DataDir, filepath.FromSlash(strings.TrimPrefix(req.URL.Path, "/")))
					if err == nil {
						err = os.WriteFile(name, body, 0o600)
					}
					if err != nil {
						t.Error(err)
					}
				}
				http.Error(w, "disk trouble", http.StatusInternalServerError)
				return true
			})
			_, err := Push(context.Background(), r.opt)
			if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "try again later") {
				t.Fatalf("push with the %s failing: %v, want the server's 500 and a way out\n%s", tc.name, err, r.log.String())
			}
			if !failed.Load() {
				t.Fatal("no request failed")
			}
			r.srv.SetHook(nil)
			res := r.push()
			st := r.state()
			if st.Last != res.Snapshot {
				t.Errorf("state's last sync %q, pushed %q", st.Last, res.Snapshot)
			}
			config, err := os.ReadFile(filepath.Join(r.repo, "config"))
			if err != nil {
				t.Fatal(err)
			}
			file, err := os.ReadFile(filepath.Join(r.repo, "keys", st.KeyHint))
			if err != nil {
				t.Fatalf("the state's key %q: %v", st.KeyHint, err)
			}
			if master, err := repofile.OpenKeyFile(file, earlyPassword); err != nil || !master.OpensConfig(config) {
				t.Errorf("the state's key does not open the config (%v)", err)
			}
			if out, err := r.restic("--key-hint", st.KeyHint, "check").CombinedOutput(); err != nil {
				t.Fatalf("restic check: %v\n%s", err, out)
			}
			r.pulledBy("v1")
		})
	}
}

// TestFirstPushIntoARepositoryFinishedMeanwhile: the listing finds a
// repository being created (folders, no snapshot); by the time the push
// asks for its config, the other computer has written its key and config,
// and a third computer that lost the race left its key, listed first.
// The key list read with the listing (empty) is too old to choose from:
// the push chooses the key that opens the config from a list read after
// it, where restic, given no key, would take the stray one and fail
// ("ciphertext verification failed").
func TestFirstPushIntoARepositoryFinishedMeanwhile(t *testing.T) {
	r := newFreshRig(t)
	ctx := context.Background()
	if err := r.server.CreateRepository(ctx, r.id); err != nil {
		t.Fatal(err)
	}
	cheap := repofile.ScryptParams{N: 1 << 10, R: 8, P: 1}
	var winner, stray repofile.NewRepository
	for stray.KeyID >= winner.KeyID {
		var err error
		if winner, err = repofile.CreateRepository(earlyPassword, cheap, "bob", "b", time.Now()); err != nil {
			t.Fatal(err)
		}
		if stray, err = repofile.CreateRepository(earlyPassword, cheap, "carol", "c", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var fired atomic.Bool
	r.srv.SetHook(func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/config") && req.Header.Get("User-Agent") == "instance-sync" && fired.CompareAndSwap(false, true) {
			for _, f := range []struct {
				rel  string
				data []byte
			}{{"keys/" + stray.KeyID, stray.KeyFile}, {"keys/" + winner.KeyID, winner.KeyFile}, {"config", winner.Config}} {
				if err := r.server.SaveFile(ctx, r.id, f.rel, f.data); err != nil {
					t.Error(err)
				}
			}
		}
		return false
	})
	res := r.push()
	r.srv.SetHook(nil)
	if !fired.Load() {
		t.Fatal("the push never asked for the config")
	}
	if st := r.state(); st.KeyHint != winner.KeyID || st.Last != res.Snapshot {
		t.Errorf("state: key %q, last %q; want the winner's key %q and the push %q", st.KeyHint, st.Last, winner.KeyID, res.Snapshot)
	}
	if out, err := r.restic("--key-hint", winner.KeyID, "check").CombinedOutput(); err != nil {
		t.Fatalf("restic check: %v\n%s", err, out)
	}
	r.pulledBy("v1")
}
