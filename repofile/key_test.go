package repofile

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/restic"
	"github.com/klauspost/compress/zstd"
)

// fixture is one repository in testdata, written by restic 0.18.1 (see
// testdata/README.md): its master key, its one snapshot file and what
// "restic snapshots --json" said about it.
type fixture struct {
	key  Key
	id   string
	file []byte
	want restic.Snapshot
}

func loadFixture(t testing.TB, version string) fixture {
	t.Helper()
	dir := filepath.Join("testdata", version)
	raw, err := os.ReadFile(filepath.Join(dir, "masterkey.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("%s/snapshots: %v entries, %v", dir, len(ents), err)
	}
	id := ents[0].Name()
	file, err := os.ReadFile(filepath.Join(dir, "snapshots", id))
	if err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(filepath.Join(dir, "restic-snapshots.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []restic.Snapshot
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("%s/restic-snapshots.json: %v", dir, err)
	}
	return fixture{key: key, id: id, file: file, want: list[0]}
}

// seal encrypts plain the way restic writes a file. The IV comes from the
// plaintext so fuzzing stays deterministic; restic draws it at random.
func seal(k Key, plain []byte) []byte {
	sum := sha256.Sum256(plain)
	return k.sealIV(sum[:ivSize], plain)
}

func compress(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return append([]byte{encodingZstd}, enc.EncodeAll(b, nil)...)
}

// compressStream compresses without a frame content size, the way a
// streaming writer does, so only the decoder's running count can stop it.
func compressStream(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(encodingZstd)
	enc, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func idOf(file []byte) string {
	sum := sha256.Sum256(file)
	return hex.EncodeToString(sum[:])
}

func equalSnapshot(t testing.TB, got, want restic.Snapshot) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("ID = %s, want %s", got.ID, want.ID)
	}
	// Same instant and the same zone offset restic wrote.
	if !got.Time.Equal(want.Time) || got.Time.Format("2006-01-02T15:04:05.999999999Z07:00") != want.Time.Format("2006-01-02T15:04:05.999999999Z07:00") {
		t.Errorf("Time = %v, want %v", got.Time, want.Time)
	}
	if got.Hostname != want.Hostname {
		t.Errorf("Hostname = %q, want %q", got.Hostname, want.Hostname)
	}
	if !slices.Equal(got.Tags, want.Tags) {
		t.Errorf("Tags = %q, want %q", got.Tags, want.Tags)
	}
	switch {
	case got.Summary == nil || want.Summary == nil:
		if got.Summary != want.Summary {
			t.Errorf("Summary = %v, want %v", got.Summary, want.Summary)
		}
	case *got.Summary != *want.Summary:
		t.Errorf("Summary = %+v, want %+v", *got.Summary, *want.Summary)
	}
}

// TestFixtures decodes snapshot files restic wrote, in both repository
// formats, and compares with what restic itself reported.
func TestFixtures(t *testing.T) {
	for _, tt := range []struct {
		version  string
		encoding byte
	}{{"v1", encodingJSONObject}, {"v2", encodingZstd}} {
		t.Run(tt.version, func(t *testing.T) {
			fx := loadFixture(t, tt.version)
			plain, err := fx.key.Open(fx.file)
			if err != nil {
				t.Fatal(err)
			}
			if plain[0] != tt.encoding {
				t.Fatalf("encoding version %d, want %d", plain[0], tt.encoding)
			}
			got, err := fx.key.Snapshot(fx.id, fx.file)
			if err != nil {
				t.Fatal(err)
			}
			equalSnapshot(t, got, fx.want)
		})
	}
}

func TestParseMasterKey(t *testing.T) {
	fx := loadFixture(t, "v2")
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	key := func(k, r, enc string) string {
		return `{"mac":{"k":` + k + `,"r":` + r + `},"encrypt":` + enc + `}`
	}
	q := func(s string) string { return `"` + s + `"` }
	for _, tt := range []struct {
		name, in, want string // want "" = accepted
	}{
		{"compact", key(q(b64(16)), q(b64(16)), q(b64(32))), ""},
		{"unknown field", `{"mac":{"k":"` + b64(16) + `","r":"` + b64(16) + `"},"encrypt":"` + b64(32) + `","new":1}`, ""},
		{"empty", ``, "master key: unexpected end of JSON input"},
		{"not json", `Fatal: wrong password`, "master key: invalid character"},
		{"array", `[]`, "master key: json: cannot unmarshal array"},
		{"no encrypt", `{"mac":{"k":"` + b64(16) + `","r":"` + b64(16) + `"}}`, "encrypt is missing"},
		{"no mac", `{"encrypt":"` + b64(32) + `"}`, "mac.k is missing"},
		{"null r", key(q(b64(16)), `null`, q(b64(32))), "mac.r is missing"},
		{"short encrypt", key(q(b64(16)), q(b64(16)), q(b64(31))), "encrypt is 31 bytes, want 32"},
		{"long k", key(q(b64(17)), q(b64(16)), q(b64(32))), "mac.k is 17 bytes, want 16"},
		{"bad base64", key(q("!!!!"), q(b64(16)), q(b64(32))), "master key: illegal base64"},
		{"url base64", key(q(strings.Repeat("_", 22)+"=="), q(b64(16)), q(b64(32))), "master key: illegal base64"},
		{"number", key(`1`, q(b64(16)), q(b64(32))), "master key: json: cannot unmarshal number"},
		{"all zero", key(q(base64.StdEncoding.EncodeToString(make([]byte, 16))), q(base64.StdEncoding.EncodeToString(make([]byte, 16))), q(base64.StdEncoding.EncodeToString(make([]byte, 32)))), "all zero"},
		{"trailing", key(q(b64(16)), q(b64(16)), q(b64(32))) + `x`, "master key: invalid character"},
	} {
		_, err := ParseMasterKey([]byte(tt.in))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}

	// The cached copy reads back as the same key, alone or inside a
	// larger document, and still opens restic's files.
	b, err := json.Marshal(fx.key)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseMasterKey(b)
	if err != nil || again != fx.key {
		t.Fatalf("round trip: %v", err)
	}
	var doc struct {
		Key  Key    `json:"key"`
		User string `json:"user"`
	}
	if err := json.Unmarshal([]byte(`{"key":`+string(b)+`,"user":"u"}`), &doc); err != nil || doc.Key != fx.key {
		t.Fatalf("embedded: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"key":{"mac":{}}}`), &doc); err == nil {
		t.Fatal("embedded broken key accepted")
	}
	if _, err := again.Open(fx.file); err != nil {
		t.Fatal(err)
	}
	var restics keyJSON
	raw, _ := os.ReadFile("testdata/v2/masterkey.json")
	if err := json.Unmarshal(raw, &restics); err != nil {
		t.Fatal(err)
	}
	var ours keyJSON
	if err := json.Unmarshal(b, &ours); err != nil || !bytes.Equal(ours.Encrypt, restics.Encrypt) ||
		!bytes.Equal(ours.MAC.K, restics.MAC.K) || !bytes.Equal(ours.MAC.R, restics.MAC.R) {
		t.Fatalf("MarshalJSON changed the shape: %s", b)
	}

	// Formatting never shows the secret.
	secret := base64.StdEncoding.EncodeToString(fx.key.encrypt[:])
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		s := fmt.Sprintf(verb, fx.key)
		if strings.Contains(s, secret) || strings.Contains(s, hex.EncodeToString(fx.key.encrypt[:4])) ||
			strings.Contains(s, fmt.Sprint(fx.key.encrypt[0], " ", fx.key.encrypt[1])) {
			t.Errorf("%s shows the key: %s", verb, s)
		}
	}
}

// TestOpenTampered: every damaged file is refused with a clear error.
func TestOpenTampered(t *testing.T) {
	fx := loadFixture(t, "v2")
	other := loadFixture(t, "v1").key
	flip := func(i int) []byte {
		b := slices.Clone(fx.file)
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0x01
		return b
	}
	for _, tt := range []struct {
		name string
		key  Key
		file []byte
		want error
		msg  string
	}{
		{"nil", fx.key, nil, nil, "file is 0 bytes, shorter than the 32 bytes of IV and MAC"},
		{"31 bytes", fx.key, fx.file[:31], nil, "file is 31 bytes"},
		{"IV and MAC only", fx.key, fx.file[:32], ErrMAC, ""},
		{"truncated", fx.key, fx.file[:len(fx.file)-1], ErrMAC, ""},
		{"appended", fx.key, append(slices.Clone(fx.file), 0), ErrMAC, ""},
		{"IV byte", fx.key, flip(0), ErrMAC, ""},
		{"ciphertext byte", fx.key, flip(ivSize + 3), ErrMAC, ""},
		{"last ciphertext byte", fx.key, flip(-macSize - 1), ErrMAC, ""},
		{"MAC byte", fx.key, flip(-1), ErrMAC, ""},
		{"wrong key", other, fx.file, ErrMAC, ""},
		{"zero key", Key{}, fx.file, ErrMAC, ""},
	} {
		plain, err := tt.key.Open(tt.file)
		if err == nil || plain != nil {
			t.Errorf("%s: opened", tt.name)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.msg)
		}
	}
}

func TestUnpack(t *testing.T) {
	doc := []byte(`{"time":"2025-01-02T03:04:05Z"}`)
	z := compress(t, doc)
	huge := make([]byte, maxUnpacked+1)
	for _, tt := range []struct {
		name string
		in   []byte
		out  string // the JSON that comes back
		err  string // or the error
	}{
		{"repository v1 object", doc, string(doc), ""},
		{"repository v1 array", []byte(`[1]`), `[1]`, ""},
		{"zstd", z, string(doc), ""},
		{"zstd stream", compressStream(t, doc), string(doc), ""},
		{"empty", nil, "", "empty file"},
		{"version 0", []byte{0, '{', '}'}, "", "unknown encoding version 0"},
		{"version 1", append([]byte{1}, z[1:]...), "", "unknown encoding version 1"},
		{"version 3", append([]byte{3}, z[1:]...), "", "unknown encoding version 3"},
		{"plain JSON after version 2", append([]byte{2}, doc...), "", "compressed JSON:"},
		{"version byte only", []byte{2}, "", "compressed JSON: no data"},
		{"truncated zstd", z[:len(z)-3], "", "compressed JSON:"},
		{"damaged zstd", append(slices.Clone(z[:len(z)-4]), 0xff, 0xff, 0xff, 0xff), "", "compressed JSON:"},
		{"oversized", compress(t, huge), "", "compressed JSON unpacks to more than the 16 MiB allowed"},
		{"oversized stream", compressStream(t, huge), "", "unpacks to more than"},
		{"oversized JSON", append([]byte{'{'}, huge...), "", "JSON is 16777218 bytes, more than the 16 MiB allowed"},
	} {
		got, err := Unpack(tt.in)
		if tt.err == "" {
			if err != nil || string(got) != tt.out {
				t.Errorf("%s: %q, %v", tt.name, got, err)
			}
			continue
		}
		if err == nil || got != nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %.40q, %v, want %q", tt.name, got, err, tt.err)
		}
	}
}

// TestSnapshotRefuses: files that authenticate but are not snapshots, and
// files whose name is not their hash.
func TestSnapshotRefuses(t *testing.T) {
	fx := loadFixture(t, "v2")
	sealed := func(doc string) []byte { return seal(fx.key, compress(t, []byte(doc))) }
	tampered := slices.Clone(fx.file)
	tampered[20] ^= 0x80
	for _, tt := range []struct {
		name string
		id   string
		file []byte
		want error
		msg  string
	}{
		{"changed byte", fx.id, tampered, ErrIDMismatch, "snapshot 8b8f48d9: file content does not match its id"},
		{"other name", strings.Repeat("0", 64), fx.file, ErrIDMismatch, ""},
		{"upper-case name", strings.ToUpper(fx.id), fx.file, ErrIDMismatch, ""},
		{"empty name", "", fx.file, ErrIDMismatch, ""},
		{"short file", idOf(fx.file[:10]), fx.file[:10], nil, "shorter than"},
		{"wrong key", fx.id, fx.file, ErrMAC, ""}, // key replaced below
		{"index file", "", sealed(`{"packs":[],"supersedes":[]}`), nil, "not a snapshot file"},
		{"lock file", "", sealed(`{"time":"2025-01-02T03:04:05Z","exclusive":false,"hostname":"pc","pid":1}`), nil, "not a snapshot file"},
		{"no time", "", sealed(`{"tree":"` + strings.Repeat("a", 64) + `"}`), nil, "not a snapshot file"},
		{"array", "", sealed(`[]`), nil, "cannot unmarshal array"},
		{"bad time", "", sealed(`{"time":1}`), nil, "not a JSON string"},
		{"not JSON", "", sealed(`{nope`), nil, "invalid character"},
		{"bad version", "", seal(fx.key, []byte{9, 1, 2}), nil, "unknown encoding version 9"},
		{"empty plaintext", "", seal(fx.key, nil), nil, "empty file"},
	} {
		id, key := tt.id, fx.key
		if id == "" && tt.name != "empty name" {
			id = idOf(tt.file)
		}
		if tt.name == "wrong key" {
			key = loadFixture(t, "v1").key
		}
		s, err := key.Snapshot(id, tt.file)
		if err == nil || s.ID != "" {
			t.Errorf("%s: accepted %+v", tt.name, s)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.msg)
		}
	}

	// A file sealed here decodes like restic's own: the test's seal is the
	// format, and an "id" inside the file does not override the name.
	plain, err := fx.key.Open(fx.file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Unpack(plain)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["id"] = strings.Repeat("f", 64)
	doc, _ = json.Marshal(m)
	file := seal(fx.key, compress(t, doc))
	s, err := fx.key.Snapshot(idOf(file), file)
	if err != nil || s.ID != idOf(file) {
		t.Fatalf("resealed: %+v, %v", s, err)
	}
	want := fx.want
	want.ID = s.ID
	equalSnapshot(t, s, want)
}

func FuzzOpen(f *testing.F) {
	fx := loadFixture(f, "v2")
	f.Add(fx.file)
	f.Add(loadFixture(f, "v1").file)
	f.Add(fx.file[:32])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, file []byte) {
		plain, err := fx.key.Open(file)
		if err == nil && len(plain) != len(file)-overhead {
			t.Fatalf("%d bytes of plaintext from a %d byte file", len(plain), len(file))
		}
		if _, err := fx.key.Snapshot(idOf(file), file); err == nil && !bytes.Equal(file, fx.file) {
			t.Fatal("a file restic did not write decoded as a snapshot")
		}
	})
}

// FuzzUnpack feeds plaintexts through Unpack, and sealed through Snapshot,
// so the fuzzer reaches the decoders behind the MAC.
func FuzzUnpack(f *testing.F) {
	fx := loadFixture(f, "v2")
	for _, v := range []string{"v1", "v2"} {
		x := loadFixture(f, v)
		plain, err := x.key.Open(x.file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	f.Add([]byte{2})
	f.Add([]byte{2, 0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		out, err := Unpack(plain)
		if err == nil && len(out) > maxUnpacked {
			t.Fatalf("unpacked %d bytes", len(out))
		}
		file := seal(fx.key, plain)
		s, err := fx.key.Snapshot(idOf(file), file)
		if err == nil && (s.ID != idOf(file) || s.Time.IsZero()) {
			t.Fatalf("accepted %+v", s)
		}
	})
}
