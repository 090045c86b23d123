package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// TestPushFilterFollowsItsWalk: the walk a push takes decides what restic
// is given. With nothing irregular in scope restic gets the scope's
// folders; a symlink in scope (the manifest leaves it out) makes restic
// take the exact file list, so the snapshot holds what the manifest says.
// Each push records its sync.
func TestPushFilterFollowsItsWalk(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	bin := testenv.Restic(t)
	srv, err := testserver.Start(t.TempDir(), "", map[string]string{"alice": "alice-secret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pack := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		name := filepath.Join(pack, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("saves/W/level.dat", "one")
	var log bytes.Buffer
	opt := Options{
		PackFolder: pack, ResticBinary: bin, NoDownload: true, Hostname: "test",
		UI: ui.NewPlain(&log), Stderr: &log, Getenv: func(string) string { return "" },
		UserDirs: instance.UserDirs{Config: t.TempDir(), Cache: t.TempDir()},
	}
	ctx := context.Background()
	if _, err := Init(ctx, InitOptions{Options: opt, URL: srv.URL, Token: instance.Token{User: "alice", Password: "alice-secret-pw"}}); err != nil {
		t.Fatal(err)
	}
	filesFrom := instance.Paths{Pack: pack}.FilesFrom()
	push := func(want string) {
		t.Helper()
		r, err := Push(ctx, opt)
		if err != nil || r.Action != ActionPushed {
			t.Fatalf("push: %+v, %v\n%s", r, err, log.String())
		}
		if got, _ := os.ReadFile(filesFrom); string(got) != want {
			t.Errorf("restic was given %q, want %q", got, want)
		}
		// The push recorded its sync: the snapshot is the next one's base,
		// at the snapshot's time.
		st, err := instance.Paths{Pack: pack}.LoadState()
		if err != nil || st.Last != r.Snapshot || !st.LastSync.Equal(st.Known[r.Snapshot].Time) || st.LastSync.IsZero() {
			t.Errorf("state after the push: last %q at %v (%v); want %q at its snapshot's time", st.Last, st.LastSync, err, r.Snapshot)
		}
	}
	push("saves\x00")
	write("saves/W/level.dat", "two")
	if err := os.Symlink("W", filepath.Join(pack, "saves", "link")); err != nil {
		t.Fatal(err)
	}
	push("saves/W/level.dat\x00")
}
