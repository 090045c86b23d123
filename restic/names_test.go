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
	bin := testenv.Restic(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	names := []string{"saves/W/new\nline", "saves/W/cr\rname", "saves/W/tab\tname", "saves/W/bad\xff\xfe", "saves/\x80\n/level.dat", "options.txt"}
	var list strings.Builder
	for i, n := range names {
		p := filepath.Join(src, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte{byte('a' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		list.WriteString(n + "\x00")
	}
	listFile := filepath.Join(dir, "files-from.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Client{Binary: bin, Repo: filepath.Join(dir, "repo"), Password: "pw", Dir: src, Timeout: 2 * time.Minute, Stall: 2 * time.Minute,
		Environ: []string{"HOME=" + dir, "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "PATH=" + os.Getenv("PATH")}}
	ctx := context.Background()
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
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
