package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/restic"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

func TestRestoreIncludes(t *testing.T) {
	s := &session{scope: scope.Scope{Include: []string{"saves/", "options.txt", "screenshots/"}}}
	items := map[string]snapItem{
		"saves":                     {Type: "dir"},
		"saves/W":                   {Type: "dir"},
		"saves/W/level.dat":         {Type: "file"},
		"saves/W/region":            {Type: "dir"},
		"saves/W/region/r.0.0.mca":  {Type: "file"},
		"saves/Creative Test":       {Type: "dir"},
		"saves/Creative Test/a.dat": {Type: "file"},
		"saves/W [1]":               {Type: "dir"},
		"saves/W [1]/level.dat":     {Type: "file"},
		"saves/W [1]/r.mca":         {Type: "file"},
		"options.txt":               {Type: "file"},
		"screenshots":               {Type: "dir"},
		"screenshots/[weird]*.png":  {Type: "file"},
		"screenshots/link":          {Type: "symlink"},
	}
	all := func(paths ...string) map[string]snapItem {
		m := map[string]snapItem{}
		for _, p := range paths {
			m[p] = items[p]
		}
		return m
	}
	for _, c := range []struct {
		name string
		want map[string]snapItem
		out  []string
	}{
		{"everything wanted: whole folders", all("saves/W/level.dat", "saves/W/region/r.0.0.mca", "saves/Creative Test/a.dat", "saves/W [1]/level.dat", "saves/W [1]/r.mca", "options.txt"),
			[]string{"/options.txt", "/saves"}},
		{"an excluded world is not downloaded", all("saves/W/level.dat", "saves/W/region/r.0.0.mca", "options.txt"),
			[]string{"/options.txt", "/saves/W"}},
		{"single files", all("saves/W/level.dat"), []string{"/saves/W/level.dat"}},
		{"a name with pattern characters: named (includePatterns escapes it)", all("screenshots/[weird]*.png"), []string{"/screenshots/[weird]*.png"}},
		{"a folder named with pattern characters, whole", all("saves/W [1]/level.dat", "saves/W [1]/r.mca", "options.txt"), []string{"/options.txt", "/saves/W [1]"}},
	} {
		if got := s.restoreIncludes(items, c.want); !reflect.DeepEqual(got, c.out) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.out)
		}
	}
}

func TestIsDiskFull(t *testing.T) {
	full := &restic.Error{Op: "restore", ExitCode: 1, Message: "There were 1 errors",
		Items: []string{"write /p/.cloud-sync/staging/saves/W/r.0.0.mca: no space left on device"}}
	if !isDiskFull(full) {
		t.Error("restic's item error not seen")
	}
	if isDiskFull(&restic.Error{Op: "restore", ExitCode: 1, Message: "There were 1 errors", Items: []string{"open x: permission denied"}}) {
		t.Error("a permission error taken for a full disk")
	}
}

// TestNotRestoredSaysItOnce: a failed restore's warning says "nothing was
// changed" once, whether or not the error said it already.
func TestNotRestoredSaysItOnce(t *testing.T) {
	for _, e := range []error{
		errors.New("restic did not restore saves/W/level.dat as snapshot 0123abcd has it; nothing was changed"),
		errors.New("disk full: 5 MiB needed on /p, 1 MiB free"),
	} {
		var log bytes.Buffer
		s := &session{opt: Options{UI: ui.NewPlain(&log)}}
		r, err := s.notRestored(&StageError{e})
		if err != nil || r.Action != ActionNotRestored {
			t.Fatalf("%v: %+v, %v", e, r, err)
		}
		if n := strings.Count(r.Message, "nothing was changed"); n != 1 || !strings.HasSuffix(r.Message, "playing with the files on this computer") {
			t.Errorf("message %q: says nothing was changed %d times", r.Message, n)
		}
	}
}

// TestDisplacedDirPerRestore: two restores in the same second each get a
// folder of their own in displaced/. One restore had moved
// saves/World/data aside; the next one, in the same second, could not
// move saves/World itself into the same folder ("file exists").
func TestDisplacedDirPerRestore(t *testing.T) {
	displaced := filepath.Join(t.TempDir(), "displaced")
	now := time.Date(2026, 11, 30, 16, 37, 41, 0, time.UTC)
	first, err := newDisplacedDir(displaced, now)
	if err != nil || filepath.Base(first) != "20261130-163741" {
		t.Fatalf("first: %q, %v", first, err)
	}
	if err := os.MkdirAll(filepath.Join(first, "saves", "World", "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	second, err := newDisplacedDir(displaced, now.Add(500*time.Millisecond))
	if err != nil || filepath.Base(second) != "20261130-163741-2" {
		t.Fatalf("second in the same second: %q, %v", second, err)
	}
	if ents, _ := os.ReadDir(second); len(ents) != 0 {
		t.Errorf("the second folder is not empty: %v", ents)
	}
	third, err := newDisplacedDir(displaced, now.Add(time.Second))
	if err != nil || filepath.Base(third) != "20261130-163742" {
		t.Fatalf("next second: %q, %v", third, err)
	}
}
