package instance

import (
	"os"
	"path/filepath"
	"testing"
)

// The player's lines survive an add and a remove byte for byte, whatever
// their line endings, and adding twice adds once.
func TestPackIgnoreRoundTrip(t *testing.T) {
	const entry = "minecraft/.cloud-sync"
	for _, orig := range []string{"", "saves\n", "saves", "saves\nlogs", "a\r\nb\r\n", "\n\nx\n\n", "minecraft/.cloud-syncx\n"} {
		file := filepath.Join(t.TempDir(), ".packignore")
		if orig != "" {
			os.WriteFile(file, []byte(orig), 0o640)
		}
		for i := 0; i < 2; i++ {
			changed, err := AddPackIgnore(file, entry)
			if err != nil || changed != (i == 0) {
				t.Fatalf("%q: add #%d: changed %v, %v", orig, i+1, changed, err)
			}
		}
		got, _ := os.ReadFile(file)
		if want := entry + "\n" + orig; string(got) != want {
			t.Fatalf("%q: after add %q, want %q", orig, got, want)
		}
		if fi, _ := os.Stat(file); orig != "" && fi.Mode().Perm() != 0o640 {
			t.Fatalf("%q: mode %v, want the player's 0640", orig, fi.Mode().Perm())
		}
		if changed, err := RemovePackIgnore(file, entry); err != nil || !changed {
			t.Fatalf("%q: remove: %v, %v", orig, changed, err)
		}
		got, err := os.ReadFile(file)
		if orig == "" {
			if !os.IsNotExist(err) {
				t.Fatalf("an emptied .packignore stays: %q, %v", got, err)
			}
			continue
		}
		if string(got) != orig {
			t.Fatalf("after add and remove %q, want %q", got, orig)
		}
	}
}

// The launcher rewrites the list (joined by "\n", no final newline, in its
// own order): the entry is found and taken out wherever it is.
func TestPackIgnoreRewrittenByLauncher(t *testing.T) {
	file := filepath.Join(t.TempDir(), ".packignore")
	for in, want := range map[string]string{
		"a\nminecraft/.cloud-sync":       "a",
		"minecraft/.cloud-sync\r\na\r\n": "a\r\n",
		"a\nminecraft/.cloud-sync\nb":    "a\nb",
		"minecraft/.cloud-sync":          "",
		"a\nminecraft/.cloud-sync/sub\n": "a\nminecraft/.cloud-sync/sub\n",
	} {
		os.WriteFile(file, []byte(in), 0o644)
		if _, err := AddPackIgnore(file, "minecraft/.cloud-sync"); err != nil {
			t.Fatal(err)
		}
		if _, err := RemovePackIgnore(file, "minecraft/.cloud-sync"); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(file)
		if string(got) != want {
			t.Errorf("%q: left %q, want %q", in, got, want)
		}
	}
}

func TestPackIgnoreLocation(t *testing.T) {
	root := t.TempDir()
	for _, game := range []string{"minecraft", ".minecraft"} {
		inst := filepath.Join(root, game+"-inst")
		os.MkdirAll(filepath.Join(inst, game), 0o755)
		if _, _, ok := (Paths{Pack: filepath.Join(inst, game)}).PackIgnore(); ok {
			t.Fatalf("%s: a .packignore without instance.cfg", game)
		}
		os.WriteFile(filepath.Join(inst, "instance.cfg"), []byte("[General]\n"), 0o644)
		file, entry, ok := Paths{Pack: filepath.Join(inst, game)}.PackIgnore()
		if !ok || file != filepath.Join(inst, ".packignore") || entry != game+"/.cloud-sync" {
			t.Fatalf("%s: %s %q %v", game, file, entry, ok)
		}
		file, entry, ok = Paths{Pack: inst}.PackIgnore()
		if !ok || file != filepath.Join(inst, ".packignore") || entry != ".cloud-sync" {
			t.Fatalf("instance root as pack folder: %s %q %v", file, entry, ok)
		}
	}
}
