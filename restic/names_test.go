package restic

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

// TestBackupEveryByteOfAName drives the real restic: a NUL-separated list
// carries names with a newline, a carriage return, a tab and bytes that
// are not UTF-8; restore brings them back byte for byte. A listed file that is missing makes the
// backup ErrPartial instead of a silent skip.
func TestBackupEveryByteOfAName(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows file names cannot hold these characters")
	}
	names := []string{"saves/W/new\nline", "saves/W/cr\rname", "saves/W/tab\tname", "saves/W/bad\xff\xfe", "saves/\x80\n/level.dat", "options.txt"}
	c, dir := newRepo(t, names)
	var list strings.Builder
	for _, n := range names {
		list.WriteString(n + "\x00")
	}
	listFile := filepath.Join(dir, "files-from.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sum, err := c.Backup(ctx, BackupOptions{FilesFrom: listFile, Host: "h", Files: len(names)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.TotalFiles != int64(len(names)) {
		t.Fatalf("restic backed up %d files, want %d", sum.TotalFiles, len(names))
	}
	target := filepath.Join(dir, "out")
	if err := c.Restore(ctx, sum.SnapshotID, RestoreOptions{Target: target}, nil); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		got, err := os.ReadFile(filepath.Join(target, filepath.FromSlash(n)))
		if err != nil || string(got) != string([]byte{byte('a' + i)}) {
			t.Errorf("%q restored as %q, %v", n, got, err)
		}
	}

	// A listed file that is gone: restic only warns; Backup says partial.
	if err := os.WriteFile(listFile, []byte(list.String()+"saves/W/gone.dat\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err = c.Backup(ctx, BackupOptions{FilesFrom: listFile, Host: "h", Files: len(names) + 1}, nil)
	if !errors.Is(err, ErrPartial) || sum.SnapshotID == "" {
		t.Fatalf("backup without a listed file: %v (snapshot %q), want ErrPartial with the snapshot", err, sum.SnapshotID)
	}
	if !strings.Contains(err.Error(), "6 of the 7 files") {
		t.Fatalf("the error does not count the files: %v", err)
	}
}

// TestIncludeNamesLiterally drives the real restic: a name holding
// restic's pattern characters (* ? [ \ and a folder named **), given to
// restore as LiteralPattern, restores that file and not the siblings the
// name would match as a pattern.
func TestIncludeNamesLiterally(t *testing.T) {
	pairs := [][2]string{ // a name, and a sibling it matches as a pattern
		{"saves/W [1]/level.dat", "saves/W 1/level.dat"},
		{"screenshots/[a-c]x.png", "screenshots/bx.png"},
	}
	if runtime.GOOS != "windows" {
		pairs = append(pairs,
			[2]string{"screenshots/[weird]*.png", "screenshots/wanything.png"},
			[2]string{"screenshots/a?.png", "screenshots/ab.png"},
			[2]string{`saves/back\slash/level.dat`, "saves/backslash/level.dat"},
			[2]string{"saves/**/level.dat", "saves/any/level.dat"},
		)
	}
	var all []string
	for _, p := range pairs {
		all = append(all, p[0], p[1])
	}
	c, dir := newRepo(t, all)
	ctx := context.Background()
	listFile := filepath.Join(dir, "files-from.txt")
	if err := os.WriteFile(listFile, []byte("saves\x00screenshots\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := c.Backup(ctx, BackupOptions{FilesFrom: listFile, Host: "h"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pairs {
		pat, ok := LiteralPattern(p[0])
		if !ok {
			t.Fatalf("%q: no literal pattern", p[0])
		}
		target := filepath.Join(dir, "out", string(rune('a'+i)))
		if err := c.Restore(ctx, sum.SnapshotID, RestoreOptions{Target: target, Includes: []string{"/" + pat}}, nil); err != nil {
			t.Fatalf("restore --include %q: %v", "/"+pat, err)
		}
		var got []string
		filepath.WalkDir(target, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(target, path)
				got = append(got, filepath.ToSlash(rel))
			}
			return nil
		})
		if len(got) != 1 || got[0] != p[0] {
			t.Errorf("restore --include %q restored %q, want only %q", "/"+pat, got, p[0])
		}
	}
}

// newRepo writes names (slash-separated, each holding one byte of its
// own) into a folder and returns a client of a new repository backing up
// from there, with the folder that holds both.
func newRepo(t *testing.T, names []string) (*Client, string) {
	t.Helper()
	bin := testenv.Restic(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for i, n := range names {
		p := filepath.Join(src, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte{byte('a' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &Client{Binary: bin, Repo: filepath.Join(dir, "repo"), Password: "pw", Dir: src, Timeout: 2 * time.Minute, Stall: 2 * time.Minute,
		Environ: []string{"HOME=" + dir, "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "PATH=" + os.Getenv("PATH")}}
	if err := c.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, dir
}
