package repofile

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/restic"
)

// repo is one repository on the test server, written by the real restic.
type repo struct {
	instance string
	client   *restic.Client
	key      Key
	files    map[string][]byte // snapshot id → file as the server serves it
	want     []restic.Snapshot // what "restic snapshots" says
}

// makeRepo creates a repository of the given format on the server, backs
// up twice with tags, and reads back the master key, restic's snapshot
// list and the snapshot files over the REST API.
func makeRepo(t *testing.T, bin string, server remote.Server, version int) repo {
	t.Helper()
	ctx := context.Background()
	r := repo{instance: fmt.Sprintf("inst-v%d", version), files: map[string][]byte{}}
	work := t.TempDir()
	pack := filepath.Join(work, "pack")
	if err := os.MkdirAll(filepath.Join(pack, "saves"), 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(work, "cache")
	r.client = &restic.Client{
		Binary:       bin,
		Repo:         server.RepoURL(r.instance),
		Password:     "repo-pw-" + r.instance,
		RESTUser:     server.User,
		RESTPassword: server.Password,
		Dir:          pack,
		Timeout:      2 * time.Minute,
		Stall:        2 * time.Minute,
		Environ:      append(os.Environ(), "XDG_CACHE_HOME="+cache),
	}
	// Client.Init has no format option; restic's default is version 2.
	init := exec.Command(bin, "--repo", r.client.Repo, "init", "--repository-version", fmt.Sprint(version))
	init.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "RESTIC_") })
	init.Env = append(init.Env, "RESTIC_PASSWORD="+r.client.Password, "XDG_CACHE_HOME="+cache,
		"RESTIC_REST_USERNAME="+server.User, "RESTIC_REST_PASSWORD="+server.Password)
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("restic init: %v\n%s", err, out)
	}
	list := filepath.Join(work, "files.txt")
	if err := os.WriteFile(list, []byte("saves/level.dat\x00options.txt\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, b := range []restic.BackupOptions{
		{Host: "pc-1", Tags: []string{"isync:v1", "kind:push", "base:none"}},
		{Host: "pc-2", Tags: []string{"isync:v1", "kind:pull"}},
	} {
		if err := os.WriteFile(filepath.Join(pack, "saves", "level.dat"), bytes.Repeat([]byte{byte(i)}, 1000*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pack, "options.txt"), []byte("fov:70"), 0o644); err != nil {
			t.Fatal(err)
		}
		b.FilesFrom = list
		if _, err := r.client.Backup(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}

	var stderr bytes.Buffer
	r.client.Stderr = &stderr
	raw, err := r.client.MasterKey(ctx)
	r.client.Stderr = nil
	if err != nil {
		t.Fatal(err)
	}
	if r.key, err = ParseMasterKey(raw); err != nil {
		t.Fatalf("%v", err) // not raw: it is the key
	}
	if strings.Contains(stderr.String(), base64.StdEncoding.EncodeToString(r.key.encrypt[:])) {
		t.Fatal("the master key reached restic's stderr log")
	}

	start := time.Now()
	if r.want, err = r.client.Snapshots(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("v%d: restic snapshots took %s", version, time.Since(start).Round(time.Millisecond))
	l, err := server.ListSnapshots(ctx, r.instance)
	if err != nil || len(l.Snapshots) != 2 || len(r.want) != 2 {
		t.Fatalf("%d snapshots listed, restic shows %d: %v", len(l.Snapshots), len(r.want), err)
	}
	for _, s := range r.want {
		file, err := server.SnapshotFile(ctx, r.instance, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(file)) != l.Snapshots[s.ID] {
			t.Fatalf("snapshot %s: %d bytes, listed with %d", s.ID, len(file), l.Snapshots[s.ID])
		}
		r.files[s.ID] = file
	}
	return r
}

// TestAgainstRestic reads snapshot files the real restic wrote to the real
// rest-server, in both repository formats, and compares every field with
// what restic itself reports.
func TestAgainstRestic(t *testing.T) {
	bin := testenv.Restic(t)
	srv, err := testserver.Start(t.TempDir(), "127.0.0.1:0", map[string]string{"u": "pw-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	server := remote.Server{URL: srv.URL, User: "u", Password: "pw-0123456789", Timeout: 30 * time.Second}
	ctx := context.Background()

	repos := map[int]repo{}
	for _, version := range []int{1, 2} {
		r := makeRepo(t, bin, server, version)
		repos[version] = r
		for _, want := range r.want {
			file := r.files[want.ID]
			plain, err := r.key.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			if enc := map[int]byte{1: '{', 2: 2}[version]; plain[0] != enc {
				t.Errorf("v%d: encoding version %d, want %d", version, plain[0], enc)
			}
			start := time.Now()
			got, err := r.key.Snapshot(want.ID, file)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("v%d: decoded snapshot %s in %s", version, want.ID[:8], time.Since(start))
			equalSnapshot(t, got, want)
		}
		if len(r.want) == 2 && (r.want[0].Hostname == r.want[1].Hostname || slices.Equal(r.want[0].Tags, r.want[1].Tags)) {
			t.Errorf("v%d: both snapshots look alike; the comparison proves little", version)
		}

		// The cached copy of the key opens the files as restic's does.
		b, err := json.Marshal(r.key)
		if err != nil {
			t.Fatal(err)
		}
		cached, err := ParseMasterKey(b)
		if err != nil || cached != r.key {
			t.Fatalf("cached key: %v", err)
		}
	}

	// A key of another repository (the instance's repository was deleted
	// and created again) does not authenticate.
	for id, file := range repos[2].files {
		if _, err := repos[1].key.Snapshot(id, file); !errors.Is(err, ErrMAC) {
			t.Fatalf("v1 key on a v2 file: %v", err)
		}
		if _, err := repos[2].key.Open(file); err != nil {
			t.Fatal(err)
		}
		// One byte changed on the server: the file no longer matches its
		// name, and, if renamed to match, fails the MAC.
		bad := slices.Clone(file)
		bad[len(bad)/2] ^= 0x01
		if _, err := repos[2].key.Snapshot(id, bad); !errors.Is(err, ErrIDMismatch) {
			t.Fatalf("changed byte: %v", err)
		}
		if _, err := repos[2].key.Snapshot(idOf(bad), bad); !errors.Is(err, ErrMAC) {
			t.Fatalf("changed byte, renamed: %v", err)
		}
	}

	// How the server's answers reach the caller.
	id := repos[2].want[0].ID
	if _, err := server.SnapshotFile(ctx, repos[2].instance, strings.Repeat("0", 64)); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("unknown snapshot: %v", err)
	}
	if _, err := server.SnapshotFile(ctx, "no-such-instance", id); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("unknown instance: %v", err)
	}
	for _, bad := range []string{"../config", "", id[:8], strings.ToUpper(id), id + "/"} {
		if _, err := server.SnapshotFile(ctx, repos[2].instance, bad); err == nil || !strings.Contains(err.Error(), "is not a snapshot id") {
			t.Errorf("id %q: %v", bad, err)
		}
	}
	wrong := server
	wrong.Password = "nope"
	if _, err := wrong.SnapshotFile(ctx, repos[2].instance, id); !errors.Is(err, remote.ErrAuth) {
		t.Errorf("wrong password: %v", err)
	}
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return true
	})
	if _, err := server.SnapshotFile(ctx, repos[2].instance, id); !errors.Is(err, remote.ErrServer) {
		t.Errorf("503: %v", err)
	}
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.Write(bytes.Repeat([]byte{'x'}, 16<<20+1))
		return true
	})
	if _, err := server.SnapshotFile(ctx, repos[2].instance, id); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("oversized answer: %v", err)
	}
	srv.SetHook(nil)

	// A wrong repository password fails as restic's typed error, with
	// nothing of restic's output in it.
	c := *repos[2].client
	c.Password = "wrong"
	if raw, err := c.MasterKey(ctx); !errors.Is(err, restic.ErrWrongPassword) || raw != nil {
		t.Errorf("wrong repository password: %v", err)
	}
}

// TestKeyFileAgainstRestic opens the key files the real restic wrote with
// the password, and checks that the master key in them is the one "restic
// cat masterkey" prints and the one that opens the config; another
// repository's master key does not.
func TestKeyFileAgainstRestic(t *testing.T) {
	bin := testenv.Restic(t)
	srv, err := testserver.Start(t.TempDir(), "127.0.0.1:0", map[string]string{"u": "pw-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	server := remote.Server{URL: srv.URL, User: "u", Password: "pw-0123456789", Timeout: 30 * time.Second}
	ctx := context.Background()
	repos := []repo{makeRepo(t, bin, server, 1), makeRepo(t, bin, server, 2)}
	for i, r := range repos {
		keys, err := server.ListKeys(ctx, r.instance)
		if err != nil || len(keys) != 1 {
			t.Fatalf("%s: keys %v, %v", r.instance, keys, err)
		}
		file, err := server.KeyFile(ctx, r.instance, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		k, err := OpenKeyFile(file, r.client.Password)
		if err != nil {
			t.Fatalf("%s: %v", r.instance, err)
		}
		if k != r.key {
			t.Fatalf("%s: the key file holds another master key than restic cat masterkey prints", r.instance)
		}
		if _, err := OpenKeyFile(file, r.client.Password+"x"); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("%s: a wrong password gives %v", r.instance, err)
		}
		config, err := server.ConfigFile(ctx, r.instance)
		if err != nil {
			t.Fatal(err)
		}
		if !k.OpensConfig(config) {
			t.Fatalf("%s: the master key does not open the config", r.instance)
		}
		if repos[1-i].key.OpensConfig(config) {
			t.Fatalf("%s: another repository's master key opens the config", r.instance)
		}
	}
	if _, err := server.ConfigFile(ctx, "no-such-instance"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("config of a missing repository: %v", err)
	}
	if keys, err := server.ListKeys(ctx, "no-such-instance"); err != nil || len(keys) != 0 {
		t.Fatalf("keys of a missing repository: %v %v", keys, err)
	}
}

func TestOpenKeyFileRefusesHostileParameters(t *testing.T) {
	for _, f := range []string{
		`{"kdf":"scrypt","N":1073741824,"r":8,"p":1,"salt":"AAAA","data":"AAAA"}`,
		`{"kdf":"scrypt","N":1000,"r":8,"p":1,"salt":"AAAA","data":"AAAA"}`,
		`{"kdf":"scrypt","N":1024,"r":8,"p":100,"salt":"AAAA","data":"AAAA"}`,
		`{"kdf":"argon2","N":1024,"r":8,"p":1,"salt":"AAAA","data":"AAAA"}`,
		`not json`,
	} {
		if _, err := OpenKeyFile([]byte(f), "pw"); err == nil || errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s: %v", f, err)
		}
	}
}
