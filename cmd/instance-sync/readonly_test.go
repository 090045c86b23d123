//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
)

// TestReadOnlyAsPlayer runs instance-sync as an unprivileged user (root
// ignores file modes): a read-only file and a read-only folder are
// replaced by a pull (and the folder keeps its mode); a folder the player
// cannot write at all stops the move with "permission denied", the path
// and the fix, the game still starts, and once fixed the next pull
// finishes.
func TestReadOnlyAsPlayer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run instance-sync as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("setpriv (util-linux) is missing")
		}
		t.Skip("setpriv (util-linux) is missing")
	}
	realRestic := testenv.Restic(t)
	bin := buildBinary(t)
	work, err := os.MkdirTemp("", "isync-readonly")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	os.Chmod(work, 0o755)
	// The player's copies of the binaries, where they can run them.
	for _, f := range [][2]string{{bin, "instance-sync"}, {realRestic, "restic"}} {
		copyFile(t, f[0], filepath.Join(work, f[1]))
	}
	srv, err := testserver.Start(filepath.Join(work, "server"), "", map[string]string{"alice": "alice-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const player = "65534"
	home, a, b := filepath.Join(work, "home"), filepath.Join(work, "a"), filepath.Join(work, "b")
	token := filepath.Join(home, "token")
	write := func(rel, content string) {
		p := filepath.Join(work, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("home/token", "alice:alice-pw\n")
	write("a/saves/World/level.dat", "level v1")
	write("a/saves/World/old.dat", "old")
	write("a/options.txt", "fov:90")
	os.MkdirAll(b, 0o755)
	if out, err := exec.Command("chown", "-R", player+":"+player, home, a, b).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	os.Chmod(token, 0o600)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"INSTANCE_SYNC_RESTIC=" + filepath.Join(work, "restic"), "INST_MC_DIR=", "DISPLAY=", "WAYLAND_DISPLAY="}
	run := func(pack string, args ...string) (string, int) {
		t.Helper()
		argv := append([]string{"--reuid=" + player, "--regid=" + player, "--clear-groups", filepath.Join(work, "instance-sync")}, args...)
		cmd := exec.Command(setpriv, append(argv, "--pack-folder="+pack)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	must := func(pack string, args ...string) string {
		t.Helper()
		out, code := run(pack, args...)
		if code != 0 {
			t.Fatalf("instance-sync %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	must(a, "init", "--url="+srv.URL, "--token-file="+token)
	must(a, "push")
	cfg, err := instance.Paths{Pack: a}.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	must(b, "init", "--url="+srv.URL, "--token-file="+token, "--join="+cfg.InstanceID)
	must(b, "pull")

	// Read-only on b: the world's folder and its level.dat.
	world := filepath.Join(b, "saves", "World")
	os.Chmod(filepath.Join(world, "level.dat"), 0o444)
	os.Chmod(world, 0o555)
	write("a/saves/World/level.dat", "level v2")
	write("a/saves/World/new.dat", "new")
	os.Remove(filepath.Join(a, "saves", "World", "old.dat"))
	exec.Command("chown", "-R", player+":"+player, a).Run()
	must(a, "push")
	// (A changed mode is a local change: the player chooses the cloud.)
	if out := must(b, "pull", "--prefer=cloud"); !strings.Contains(out, "restored") {
		t.Fatalf("pull into read-only files:\n%s", out)
	}
	sameFile(t, filepath.Join(a, "saves/World/level.dat"), filepath.Join(world, "level.dat"))
	sameFile(t, filepath.Join(a, "saves/World/new.dat"), filepath.Join(world, "new.dat"))
	if _, err := os.Lstat(filepath.Join(world, "old.dat")); err == nil {
		t.Fatal("old.dat was not deleted from the read-only folder")
	}
	if fi, _ := os.Stat(world); fi.Mode().Perm() != 0o555 {
		t.Fatalf("the read-only folder's mode is %v after the pull", fi.Mode().Perm())
	}

	// A folder the player cannot write (another user's): the move stops
	// with the path and the fix; the game starts; each file old or new.
	os.Chmod(world, 0o755)
	exec.Command("chown", "root:root", world).Run()
	write("a/saves/World/level.dat", "level v3")
	exec.Command("chown", "-R", player+":"+player, a).Run()
	must(a, "push")
	out := must(b, "pull")
	if !strings.Contains(out, "permission denied: cannot write "+filepath.Join(world, "level.dat")) || !strings.Contains(out, "give your user write access to the pack folder") {
		t.Fatalf("pull into a folder of another user:\n%s", out)
	}
	if strings.Contains(out, "message_type") {
		t.Fatalf("restic's JSON reached the player:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(world, "level.dat")); string(got) != "level v2" {
		t.Fatalf("level.dat is %q", got)
	}
	exec.Command("chown", player+":"+player, world).Run()
	if out := must(b, "pull"); !strings.Contains(out, "finishing the interrupted restore") {
		t.Fatalf("the next pull did not finish the move:\n%s", out)
	}
	sameFile(t, filepath.Join(a, "saves/World/level.dat"), filepath.Join(world, "level.dat"))
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func sameFile(t *testing.T, want, got string) {
	t.Helper()
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w, g) {
		t.Fatalf("%s is %q, want %q", got, g, w)
	}
}
