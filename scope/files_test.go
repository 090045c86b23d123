package scope

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// checkFiles compares f with m every way Files is read: count, order,
// lookups, digest, the manifest file's bytes and the map it converts to.
func checkFiles(t *testing.T, f *Files, m Manifest) {
	t.Helper()
	if f.Len() != len(m) {
		t.Fatalf("Len = %d, want %d", f.Len(), len(m))
	}
	var got []string
	for p, e := range f.All() {
		if m[p] != e {
			t.Fatalf("%q: entry %v, want %v", p, e, m[p])
		}
		got = append(got, p)
	}
	want := m.Paths()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
	for p, e := range m {
		if g, ok := f.Get(p); !ok || g != e {
			t.Fatalf("Get(%q) = %v, %v; want %v", p, g, ok, e)
		}
		if _, ok := f.Get(p + "x"); ok {
			if _, in := m[p+"x"]; !in {
				t.Fatalf("Get(%q) found a file that is not there", p+"x")
			}
		}
	}
	if f.Digest() != m.Digest() {
		t.Fatal("Files.Digest differs from Manifest.Digest")
	}
	var buf bytes.Buffer
	if err := f.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if want := append(m.AppendJSON(nil), '\n'); !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WriteJSON:\n got %s\nwant %s", buf.Bytes(), want)
	}
	if fm := f.Manifest(); !reflect.DeepEqual(fm, m) {
		t.Fatalf("Manifest() = %v, want %v", fm, m)
	}
	if f.Bytes() != m.Bytes() {
		t.Fatalf("Bytes = %d, want %d", f.Bytes(), m.Bytes())
	}
}

// TestFilesOrder: names that sort before and after "/" ("a b", "a-b",
// "a.b", "a0") beside a folder "a" come in sort.Strings order of the full
// paths, as the digest and the manifest file need.
func TestFilesOrder(t *testing.T) {
	m := Manifest{}
	names := []string{"a", "a b", "a-b", "a.b", "a0", "a~", "b", "!", "ab", "a\x01", "é", "\xff"}
	for i, x := range names {
		for j, y := range names {
			m["saves/"+x+"/"+y] = Entry{Size: int64(i*100 + j), MTime: int64(j), Mode: 0o644}
		}
		m["saves/"+x+"-file"] = Entry{Size: int64(i)}
		m["options"+x] = Entry{Size: 1}
	}
	m["saves/a/a/a/deep.dat"] = Entry{Size: 7}
	checkFiles(t, FilesOf(m), m)
	checkFiles(t, FilesOf(Manifest{}), Manifest{})
}

func FuzzFilesOrder(f *testing.F) {
	f.Add("a", "a b", "a/b", "a-b/c")
	f.Add("x/y/z", "x/y-z", "x/y0", "x")
	f.Fuzz(func(t *testing.T, p1, p2, p3, p4 string) {
		m := Manifest{}
		for i, p := range []string{p1, p2, p3, p4} {
			// Only what a walk can find: no empty name, no NUL.
			if p == "" || strings.Contains(p, "\x00") || slices.Contains(strings.Split(p, "/"), "") {
				return
			}
			m[p] = Entry{Size: int64(i)}
		}
		// A file and a folder cannot share a path.
		for p := range m {
			for q := range m {
				if strings.HasPrefix(q, p+"/") {
					return
				}
			}
		}
		checkFiles(t, FilesOf(m), m)
	})
}

// walkReference is what a walk must record: every regular file under the
// include entries that is in scope and reached without a symlink,
// through filepath.WalkDir.
func walkReference(t *testing.T, s Scope, pack string) Manifest {
	t.Helper()
	m := Manifest{}
	err := filepath.WalkDir(pack, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, pack+string(filepath.Separator)))
		if d.Type().IsRegular() && s.InScope(rel) {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m[rel] = entryOf(fi)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWalkFilesMatchesReference: a walk with nested include entries (one
// reached by its parent's walk, one behind an excluded folder) records
// exactly the files in scope, once each, in path order.
func TestWalkFilesMatchesReference(t *testing.T) {
	pack := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var files []string
	for i := range 400 {
		dirs := []string{"saves/World", "saves/World-2", "saves/World 3/region", "saves/World/region", "saves/World/data",
			"XaeroWorldMap/null/mw/1", "XaeroWorldMap/null/mw/10", "XaeroWorldMap/null/mw-1", "config/keep", "config/drop", "logs", "saves/World/.cache"}
		d := dirs[rng.IntN(len(dirs))]
		names := []string{"r.%d.mca", "%d.dat", "%d-a", "a %d", "%d.dat_old", "session.lock"}
		files = append(files, d+"/"+strings.Replace(names[rng.IntN(len(names))], "%d", string(rune('a'+i%26))+strings.Repeat("x", i%5), 1))
	}
	files = append(files, "options.txt", "servers.dat", "config/keep/a.toml", "saves/World/region/r.0.0.mca",
		"saves/World/logs/latest.log", "saves/World-2/logs", "saves/World/x.tmp", "saves/World/data/.cloud-sync")
	for _, f := range files {
		p := filepath.Join(pack, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The default scope's patterns are all names: the walk matches the
	// name alone. An anchored pattern makes it match whole paths.
	for _, s := range []Scope{New(Overrides{}), New(Overrides{
		Include: []string{"config/keep/", "saves/World/region/", "saves/World/.cache/", "config/keep/a.toml"},
		Exclude: []string{"config/drop/", "**/*-a"},
	})} {
		f, _, err := s.WalkFiles(pack, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := walkReference(t, s, pack)
		if len(want) < 100 {
			t.Fatalf("the reference found only %d files", len(want))
		}
		if _, ok := want["saves/World-2/logs"]; !ok {
			t.Fatal("a file named like a folder-only pattern is not in scope")
		}
		checkFiles(t, f, want)
		m, err := s.Walk(pack)
		if err != nil || !reflect.DeepEqual(m, want) {
			t.Fatalf("Walk = %v, %v; want %v", len(m), err, len(want))
		}
	}
	if New(Overrides{}).namePatterns() == nil || New(Overrides{Exclude: []string{"config/drop/"}}).namePatterns() != nil {
		t.Fatal("namePatterns: the default scope matches by name, an anchored pattern by path")
	}
}

// TestWalkFilesNestedBehindSymlink: an include entry below a symlinked
// folder is not reached by its parent's walk (which counts the symlink
// as irregular) and is walked on its own.
func TestWalkFilesNestedBehindSymlink(t *testing.T) {
	pack, other := t.TempDir(), t.TempDir()
	for _, f := range []string{"real/inner/a.dat", "real/inner/b.dat"} {
		p := filepath.Join(other, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(pack, "saves", "W"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pack, "saves", "W", "level.dat"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, "real"), filepath.Join(pack, "saves", "link")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	s := New(Overrides{Include: []string{"saves/link/inner/"}})
	f, facts, err := s.WalkFiles(pack, nil)
	if err != nil {
		t.Fatal(err)
	}
	if facts.Irregular == 0 {
		t.Fatal("the symlink was not counted as irregular")
	}
	var got []string
	for p := range f.Paths() {
		got = append(got, p)
	}
	want := []string{"saves/W/level.dat", "saves/link/inner/a.dat", "saves/link/inner/b.dat"}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("walk = %q, want %q", got, want)
	}
}
