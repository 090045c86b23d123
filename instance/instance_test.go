package instance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/repofile"
	"git.timemachine.center/timemachine/instance-sync/scope"
)

func TestConfigRoundTrip(t *testing.T) {
	p := Paths{Pack: t.TempDir()}
	if _, err := p.LoadConfig(); !errors.Is(err, ErrNotOptedIn) {
		t.Fatalf("LoadConfig on a fresh folder = %v, want ErrNotOptedIn", err)
	}
	c := Config{URL: "https://cloud.example.org", InstanceID: "01JABCDEFGHJKMNPQRSTVWXYZ0", User: "123456789"}
	if err := p.SaveConfig(c); err != nil {
		t.Fatal(err)
	}
	got, err := p.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	c.Version = ConfigVersion
	if got != c {
		t.Fatalf("LoadConfig = %+v, want %+v", got, c)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct{ data, want string }{
		{`{"version":1,"url":`, "unexpected end of JSON input"},
		{`{"version":2,"url":"https://x","instance_id":"01JABCDEFGHJKMNPQRSTVWXYZ0","user":"a"}`, "unknown version 2"},
		{`{"version":1,"instance_id":"01JABCDEFGHJKMNPQRSTVWXYZ0","user":"a"}`, `"url" is missing`},
		{`{"version":1,"url":"https://x","instance_id":"../../etc","user":"a"}`, "not a valid instance id"},
		{`{"version":1,"url":"https://x","instance_id":"01JABCDEFGHJKMNPQRSTVWXYZ0","user":"a/b"}`, "not a valid user name"},
		{`{"version":1,"url":"https://x","instance_id":"01JABCDEFGHJKMNPQRSTVWXYZ0","user":"a"} {}`, "after top-level value"},
	} {
		p := Paths{Pack: t.TempDir()}
		os.MkdirAll(p.Dir(), 0o700)
		os.WriteFile(p.Config(), []byte(tt.data), 0o644)
		_, err := p.LoadConfig()
		var fe *FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "sync.json") || !strings.Contains(err.Error(), "init --force") {
			t.Errorf("LoadConfig(%s) = %v; want a FileError naming sync.json, %q and the fix", tt.data, err, tt.want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	p := Paths{Pack: t.TempDir()}
	os.MkdirAll(p.Dir(), 0o700)
	s, err := p.LoadState()
	if err != nil || s.Manifest != nil || s.Last != "" {
		t.Fatalf("missing state = %+v, %v; want empty", s, err)
	}
	id := strings.Repeat("ab", 32)
	s = State{
		Last:     id,
		Known:    map[string]history.Snapshot{id: {ID: id, Kind: "push", Host: "h", Time: time.Unix(100, 0).UTC()}},
		LastSync: time.Unix(200, 0).UTC(),
	}
	m := scope.Manifest{"saves/W/level.dat": {Size: 3, MTime: 5, Mode: 0o644}}
	s.SetManifest(m)
	if err := p.SaveState(&s); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p.State()); strings.Contains(string(data), "level.dat") {
		t.Fatalf("state.json holds the manifest: %s", data)
	}
	got, err := p.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	if got.Manifest != nil {
		t.Fatal("manifest decoded before it was asked for")
	}
	if !got.Synced() || got.ManifestDigest != m.Digest() || got.Last != id || got.Known[id].Host != "h" || !got.LastSync.Equal(s.LastSync) {
		t.Fatalf("state round trip: %+v", got)
	}
	if err := got.LoadManifest(); err != nil || !reflect.DeepEqual(got.Manifest, m) {
		t.Fatalf("LoadManifest = %v, %v", got.Manifest, err)
	}
	// Saving a state whose manifest was never decoded keeps it.
	got.Manifest = nil
	if err := p.SaveState(&got); err != nil {
		t.Fatal(err)
	}
	again, _ := p.LoadState()
	if err := again.LoadManifest(); err != nil || !reflect.DeepEqual(again.Manifest, m) {
		t.Fatalf("manifest lost by a save without decoding: %v, %v", again.Manifest, err)
	}
	// A manifest.json from a sync interrupted before state.json was written
	// does not pass for the last sync's.
	other := scope.Manifest{"saves/W/level.dat": {Size: 4, MTime: 5, Mode: 0o644}}
	raw, _ := json.Marshal(other)
	os.WriteFile(p.Manifest(), raw, 0o600)
	again, _ = p.LoadState()
	if err := again.LoadManifest(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched manifest.json: LoadManifest = %v", err)
	}
	// A state.json written by an earlier build, manifest inline, still reads.
	os.Remove(p.Manifest())
	old, _ := json.Marshal(map[string]any{"version": 1, "last_snapshot": id, "manifest": m, "manifest_digest": m.Digest()})
	os.WriteFile(p.State(), old, 0o600)
	again, err = p.LoadState()
	if err != nil || !again.Synced() {
		t.Fatalf("inline manifest state: %v, synced %v", err, again.Synced())
	}
	if err := again.LoadManifest(); err != nil || !reflect.DeepEqual(again.Manifest, m) {
		t.Fatalf("inline manifest = %v, %v", again.Manifest, err)
	}
	// An empty manifest (synced an empty scope) is not "never synced".
	s.SetManifest(scope.Manifest{})
	p.SaveState(&s)
	got, _ = p.LoadState()
	if !got.Synced() {
		t.Fatal("empty manifest read back as never synced")
	}
	if runtime.GOOS != "windows" {
		for _, f := range []string{p.State(), p.Manifest()} {
			fi, _ := os.Stat(f)
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s mode %o", f, fi.Mode().Perm())
			}
		}
	}
}

func TestStateCorrupt(t *testing.T) {
	p := Paths{Pack: t.TempDir()}
	os.MkdirAll(p.Dir(), 0o700)
	for _, tt := range []struct{ data, want string }{
		{`{"version":1,"manifest":`, "unexpected end of JSON input"},
		{`{"version":7}`, "unknown version 7 (this build reads version 1)"},
		{`{"version":1} {}`, "after top-level value"},
		{`[]`, "cannot unmarshal array"},
		{`{"version":1,"known":{"aa":{"id":"bb"}}}`, "names snapshot bb"},
	} {
		data := tt.data
		os.WriteFile(p.State(), []byte(data), 0o600)
		_, err := p.LoadState()
		if err == nil || !strings.Contains(err.Error(), "state.json") || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("LoadState(%s) = %v; want state.json, %q and the fix", data, err, tt.want)
		}
		if b, _ := os.ReadFile(p.State()); string(b) != data {
			t.Errorf("LoadState changed the corrupt file")
		}
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := WriteToken(path, Token{User: "alice", Password: "pw:with:colons"}); err != nil {
		t.Fatal(err)
	}
	tok, err := ReadToken(path)
	if err != nil || tok.User != "alice" || tok.Password != "pw:with:colons" {
		t.Fatalf("ReadToken = %+v, %v", tok, err)
	}
	if strings.Contains(tok.String(), "pw") {
		t.Fatalf("Token.String leaks the password: %s", tok)
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("token mode %o, want 600", fi.Mode().Perm())
		}
		os.Chmod(path, 0o640)
		if _, err := ReadToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("group-readable token: %v", err)
		}
	}
	for _, bad := range []string{"", "alice", ":pw", "alice:", "a/b:pw"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
}

func TestLock(t *testing.T) {
	p := Paths{Pack: t.TempDir()}
	l, err := p.AcquireLock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AcquireLock(); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("second lock = %v, want ErrLockHeld", err)
	}
	l.Release()
	l2, err := p.AcquireLock()
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"version":1,"url":"https://x","instance_id":"01JABCDEFGHJKMNPQRSTVWXYZ0","user":"a"}`))
	f.Add([]byte(`{"version":1,"url":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// Whatever parses must be safe to use in a repository path.
		if !ValidInstanceID(c.InstanceID) || strings.ContainsAny(c.User, "/:") || c.Version != ConfigVersion {
			t.Fatalf("ParseConfig accepted %+v", c)
		}
	})
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1,"last_snapshot":"ab","manifest":{"a":{"s":1,"m":2,"p":420}}}`))
	f.Add([]byte(`{"version":1,"known":{"x":{"id":"x","bases":["y"]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseState(data)
		if err != nil {
			return
		}
		// What parses survives a round trip.
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseState(b); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
	})
}

func FuzzParseToken(f *testing.F) {
	f.Add("alice:pw")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err == nil && (tok.User == "" || tok.Password == "" || strings.Contains(tok.User, ":")) {
			t.Fatalf("ParseToken(%q) = %+v", s, tok)
		}
	})
}

func TestMasterKeyCache(t *testing.T) {
	home := t.TempDir()
	p := Paths{Pack: t.TempDir(), KeyFile: filepath.Join(home, "cache", "keys", "srv", "alice", "01ID")}
	if _, ok := p.LoadMasterKey(); ok {
		t.Fatal("a key was loaded from nothing")
	}
	k, err := repofile.ParseMasterKey([]byte(`{"mac":{"k":"AAECAwQFBgcICQoLDA0ODw==","r":"AAECAwQFBgcICQoLDA0ODw=="},"encrypt":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SaveMasterKey(k); err != nil {
		t.Fatal(err)
	}
	got, ok := p.LoadMasterKey()
	if !ok || got != k {
		t.Fatal("cached key did not read back")
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(p.MasterKey())
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("masterkey mode %o, want 600", fi.Mode().Perm())
		}
		os.Chmod(p.MasterKey(), 0o640)
		if _, ok := p.LoadMasterKey(); ok {
			t.Fatal("a key others can read was used")
		}
	}
	os.WriteFile(p.MasterKey(), []byte(`{"mac":`), 0o600)
	if _, ok := p.LoadMasterKey(); ok {
		t.Fatal("a damaged key was used")
	}
	if err := p.ForgetMasterKey(); err != nil {
		t.Fatal(err)
	}
	if err := p.ForgetMasterKey(); err != nil {
		t.Fatalf("forgetting twice: %v", err)
	}
}

// A staged manifest is in place only once the state is saved; a discarded
// one, or one a killed push left, never is.
func TestStagedManifest(t *testing.T) {
	p := Paths{Pack: t.TempDir()}
	os.MkdirAll(p.Dir(), 0o700)
	first := scope.Manifest{"options.txt": {Size: 1, MTime: 2, Mode: 0o644}}
	var s State
	s.SetManifest(first)
	if err := p.SaveState(&s); err != nil {
		t.Fatal(err)
	}
	next := scope.Manifest{"options.txt": {Size: 9, MTime: 3, Mode: 0o644}, "servers.dat": {Size: 4, MTime: 3, Mode: 0o600}}
	sm, err := p.StageManifest(next)
	if err != nil {
		t.Fatal(err)
	}
	// Until the save, manifest.json is the last sync's.
	if got, _ := p.LoadState(); got.LoadManifest() != nil || !reflect.DeepEqual(got.Manifest, first) {
		t.Fatalf("manifest.json changed before the save: %v", got.Manifest)
	}
	s.SetStagedManifest(sm, next.Digest())
	if err := p.SaveState(&s); err != nil {
		t.Fatal(err)
	}
	got, _ := p.LoadState()
	if err := got.LoadManifest(); err != nil || !reflect.DeepEqual(got.Manifest, next) {
		t.Fatalf("after the save: %v, %v", got.Manifest, err)
	}
	want, _ := json.Marshal(next)
	if data, _ := os.ReadFile(p.Manifest()); string(data) != string(want)+"\n" {
		t.Fatalf("staged manifest.json = %s, want encoding/json's %s", data, want)
	}
	// Discarded, and left behind by a killed run: gone, and not used.
	sm, _ = p.StageManifest(first)
	sm.Discard()
	if _, err := p.StageManifest(first); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(p.Dir(), ".manifest.json.tmp-*"))
	if len(left) != 1 {
		t.Fatalf("temp files after one discard and one leftover: %v", left)
	}
	os.WriteFile(filepath.Join(p.Dir(), ".sync.json.tmp-1"), nil, 0o600)
	p.RemoveTemps()
	left, _ = filepath.Glob(filepath.Join(p.Dir(), ".*.tmp-*"))
	if len(left) != 1 || filepath.Base(left[0]) != ".sync.json.tmp-1" {
		t.Fatalf("RemoveTemps left %v; want only another writer's temp", left)
	}
	if got, _ := p.LoadState(); got.LoadManifest() != nil || !reflect.DeepEqual(got.Manifest, next) {
		t.Fatalf("a leftover stage replaced manifest.json: %v", got.Manifest)
	}
}

// TestManifestFromFiles: a sync recorded from a walk kept as scope.Files
// writes the same manifest.json as one recorded from a Manifest, staged
// or not, and reads back the same; ScanManifest streams it in path order.
func TestManifestFromFiles(t *testing.T) {
	m := scope.Manifest{
		"saves/World & Co/level.dat": {Size: 3, MTime: 5, Mode: 0o644}, "saves/World/region/r.0.0.mca": {Size: 1 << 20, MTime: 6, Mode: 0o644},
		"saves/World-2/level.dat": {Size: 4, MTime: 7, Mode: 0o600}, "options.txt": {Size: 9, MTime: -1, Mode: 0o644}, "saves/bad\xffname": {Size: 1},
	}
	want := append(m.AppendJSON(nil), '\n')
	for _, staged := range []bool{false, true} {
		p := Paths{Pack: t.TempDir()}
		os.MkdirAll(p.Dir(), 0o700)
		var s State
		f := scope.FilesOf(m)
		if staged {
			sm, err := p.StageFiles(f)
			if err != nil {
				t.Fatal(err)
			}
			s.SetStagedManifest(sm, f.Digest())
		} else {
			s.SetFiles(f, f.Digest())
		}
		if err := p.SaveState(&s); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(p.Manifest()); !bytes.Equal(data, want) {
			t.Fatalf("staged %v: manifest.json = %q, want %q", staged, data, want)
		}
		got, _ := p.LoadState()
		if got.ManifestDigest != m.Digest() {
			t.Fatal("digest differs")
		}
		var paths []string
		if err := got.ScanManifest(func(p string, e scope.Entry) {
			if m[p] != e {
				t.Errorf("%q: %v, want %v", p, e, m[p])
			}
			paths = append(paths, p)
		}); err != nil || !slices.Equal(paths, m.Paths()) {
			t.Fatalf("ScanManifest: %q, %v", paths, err)
		}
		if got.Manifest != nil {
			t.Fatal("ScanManifest decoded the manifest")
		}
		if err := got.LoadManifest(); err != nil || !reflect.DeepEqual(got.Manifest, m) {
			t.Fatalf("LoadManifest = %v, %v", got.Manifest, err)
		}
	}
}

// TestOldManifestStillLoads: manifest.json files written by earlier builds
// (encoding/json, escaped names, a name that is not UTF-8 as NUL+base64)
// and a manifest inline in state.json read through the streaming reader;
// one from an interrupted sync does not pass, streamed or decoded.
func TestOldManifestStillLoads(t *testing.T) {
	m := scope.Manifest{
		"saves/Tom & Jerry/level.dat": {Size: 3, MTime: 5, Mode: 0o644}, "saves/<quoted \"w\">/x": {Size: 4, MTime: 7, Mode: 0o600},
		"saves/tab\there": {Size: 5}, "saves/bad\xffname": {Size: 6}, "options.txt": {Size: 9, MTime: -1, Mode: 0o644},
	}
	std := map[string]scope.Entry{}
	for p, e := range m {
		if !utf8.ValidString(p) {
			p = "\x00" + base64.RawStdEncoding.EncodeToString([]byte(p))
		}
		std[p] = e
	}
	old, err := json.Marshal(std)
	if err != nil {
		t.Fatal(err)
	}
	p := Paths{Pack: t.TempDir()}
	os.MkdirAll(p.Dir(), 0o700)
	os.WriteFile(p.Manifest(), old, 0o600)
	state, _ := json.Marshal(map[string]any{"version": 1, "last_snapshot": strings.Repeat("ab", 32), "manifest_digest": m.Digest()})
	os.WriteFile(p.State(), state, 0o600)
	s, err := p.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.ScanManifest(func(p string, e scope.Entry) {
		if m[p] != e {
			t.Errorf("%q: %v, want %v", p, e, m[p])
		}
		n++
	}); err != nil || n != len(m) {
		t.Fatalf("ScanManifest of an old manifest.json: %d files, %v", n, err)
	}
	if err := s.LoadManifest(); err != nil || !reflect.DeepEqual(s.Manifest, m) {
		t.Fatalf("LoadManifest of an old manifest.json = %v, %v", s.Manifest, err)
	}
	// Inline in state.json, as the first builds wrote it.
	os.Remove(p.Manifest())
	inline, _ := json.Marshal(map[string]any{"version": 1, "last_snapshot": strings.Repeat("ab", 32), "manifest": json.RawMessage(old)})
	os.WriteFile(p.State(), inline, 0o600)
	s, _ = p.LoadState()
	n = 0
	if err := s.ScanManifest(func(string, scope.Entry) { n++ }); err != nil || n != len(m) || !reflect.DeepEqual(s.Manifest, m) {
		t.Fatalf("inline manifest: %d files, %v", n, err)
	}
	// Interrupted: manifest.json is another sync's.
	other := maps.Clone(m)
	other["options.txt"] = scope.Entry{Size: 10}
	os.WriteFile(p.Manifest(), other.AppendJSON(nil), 0o600)
	os.WriteFile(p.State(), state, 0o600)
	s, _ = p.LoadState()
	if err := s.ScanManifest(func(string, scope.Entry) {}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("ScanManifest of a mismatched manifest.json = %v", err)
	}
	if err := s.LoadManifest(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("LoadManifest of a mismatched manifest.json = %v", err)
	}
}

// TestRecordSync: a recorded sync is the base of the next push, settles
// the skipped heads, ends a restore in progress, and leaves what belongs
// to others alone (a push pending, the snapshots known, the manifest set
// before it), through a save and a load.
func TestRecordSync(t *testing.T) {
	p := Paths{Pack: t.TempDir()}
	os.MkdirAll(p.Dir(), 0o700)
	old, next := strings.Repeat("aa", 32), strings.Repeat("bb", 32)
	at := time.Unix(300, 0).UTC()
	s := State{
		Last:        old,
		Skipped:     []string{strings.Repeat("cc", 32)},
		Known:       map[string]history.Snapshot{next: {ID: next, Kind: "push"}},
		Restoring:   next,
		Journal:     &Journal{Snapshot: next, Moves: []string{"options.txt"}},
		PendingPush: "attempt1",
		LastSync:    time.Unix(100, 0).UTC(),
	}
	m := scope.Manifest{"options.txt": {Size: 1, MTime: 2, Mode: 0o644}}
	s.SetManifest(m)
	s.RecordSync(next, at)
	if err := p.SaveState(&s); err != nil {
		t.Fatal(err)
	}
	got, err := p.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	if got.Last != next || !got.LastSync.Equal(at) || got.Skipped != nil || got.Restoring != "" || got.Journal != nil {
		t.Errorf("after RecordSync: last %q, last sync %v, skipped %v, restoring %q, journal %+v; want %q, %v and nothing pending",
			got.Last, got.LastSync, got.Skipped, got.Restoring, got.Journal, next, at)
	}
	if got.PendingPush != "attempt1" || len(got.Known) != 1 {
		t.Errorf("RecordSync changed what it does not own: pending push %q, known %v", got.PendingPush, got.Known)
	}
	if err := got.LoadManifest(); err != nil || !reflect.DeepEqual(got.Manifest, m) {
		t.Errorf("manifest after RecordSync = %v, %v; want %v", got.Manifest, err, m)
	}
}
