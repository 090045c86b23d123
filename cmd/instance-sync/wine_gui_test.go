//go:build linux

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/internal/wintest"
)

// TestWindowsGUI drives the Win32 dialogs of the Windows build under Wine
// on a virtual display, as TestGUI does the Linux ones: login (server,
// user and password → token written), conflict (Cancel launch → exit 3,
// nothing changed), progress (Cancel → exit 3, the next push works) and a
// hook error, with a screenshot of each (windows-*.png). Wine draws the
// windows without a window manager, so there is no title bar in the
// pictures. It skips like TestGUI and the Wine tests.
func TestWindowsGUI(t *testing.T) {
	// Keys sent to Wine's dialogs on Xvfb are sometimes dropped on a loaded
	// machine, which leaves a dialog waiting: this test runs on request
	// (make test-wine-gui), not in every make test.
	if os.Getenv("ISYNC_WINE_GUI") != "1" {
		t.Skip("the Win32 dialogs under Wine run with ISYNC_WINE_GUI=1 (make test-wine-gui)")
	}
	for _, tool := range guiTools {
		if tool.command == "zenity" {
			continue // Windows draws its own dialogs
		}
		if _, err := exec.LookPath(tool.command); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: .ci/run installs xvfb imagemagick xdotool (required under CI=true)", tool.command)
			}
			t.Skipf("%s not found: apt-get install xvfb imagemagick xdotool", tool.command)
		}
	}
	if testing.Short() {
		t.Skip("-short")
	}
	p := wintest.Require(t)
	resticExe := wintest.ResticExe(t)
	g := &gui{t: t, dir: t.TempDir()}
	exe := wintest.GoBuild(t, g.dir, "./cmd/instance-sync")
	g.shots = os.Getenv("INSTANCE_SYNC_SCREENSHOTS")
	if g.shots == "" {
		g.shots = filepath.Join(g.dir, "screenshots")
	}
	if err := os.MkdirAll(g.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	g.display = startXvfb(t)

	srv, err := testserver.Start(filepath.Join(g.dir, "server"), "", map[string]string{"alice": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var slow atomic.Bool
	// Close waits for the requests being handled: held ones go first.
	defer slow.Store(false)
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		// Held until the test lets go (or 5 minutes): the cancel below
		// takes several dialogs, slow on a loaded machine.
		if slow.Load() && r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/data/") {
			for end := time.Now().Add(5 * time.Minute); slow.Load() && time.Now().Before(end); {
				select {
				case <-r.Context().Done():
					return false
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		return false
	})
	home := filepath.Join(g.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	w := &winGUI{g: g, p: p, exe: exe, env: p.Environ([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DISPLAY=" + g.display,
		"INSTANCE_SYNC_RESTIC=" + p.WinPath(resticExe), "INSTANCE_SYNC_HOSTNAME=desk",
		"INST_NAME=Skyblock", "INSTANCE_SYNC_WATCH=0",
	})}
	winA, a := p.UserDir(t, "Minecraft")
	winB, b := p.UserDir(t, "Minecraft")

	t.Run("login", func(t *testing.T) {
		g.t = t
		r := w.start("setup", "--url="+srv.URL, "--pack-folder="+winA)
		g.window("instance-sync: log in$")
		g.shot("windows-login-server")
		g.key("Return")
		g.window("log in to ")
		g.typeText("alice")
		g.key("Tab")
		g.typeText("pw")
		g.shot("windows-login-password")
		g.key("Return")
		g.window("which instance")
		g.shot("windows-login-instance")
		g.key("Return")
		g.window("^instance-sync$")
		g.key("Return")
		if code, out := r.wait(); code != 0 {
			t.Fatalf("setup exit %d\n%s", code, out)
		}
		if _, err := (instance.Paths{Pack: a}).LoadConfig(); err != nil {
			t.Fatal(err)
		}
	})

	level := func(pack string) string { return filepath.Join(pack, "saves", "World", "level.dat") }
	write(t, level(a), "level v1")
	w.ok("push", "--no-gui", "--pack-folder="+winA)
	cfg, err := instance.Paths{Pack: a}.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(g.dir, "alice.token"), "alice:pw\n")
	w.ok("init", "--url="+srv.URL, "--token-file="+p.WinPath(filepath.Join(g.dir, "alice.token")), "--join="+cfg.InstanceID, "--pack-folder="+winB)
	w.ok("pull", "--no-gui", "--pack-folder="+winB)
	write(t, level(a), "progress made on a")
	w.ok("push", "--no-gui", "--pack-folder="+winA)
	write(t, level(b), "progress made on b")

	t.Run("conflict-cancel", func(t *testing.T) {
		g.t = t
		r := w.start("pull", "--pack-folder="+winB)
		g.window("choose a version")
		g.shot("windows-conflict")
		g.key("Escape")
		if code, out := r.wait(); code != 3 || !strings.Contains(out, "cancelled by the player") {
			t.Fatalf("exit %d, want 3\n%s", code, out)
		}
		if got := read(t, level(b)); got != "progress made on b" {
			t.Fatalf("cancel changed the world: %q", got)
		}
	})

	t.Run("progress-cancel", func(t *testing.T) {
		g.t = t
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := range 4 {
			data := make([]byte, 12<<20)
			for j := range data {
				data[j] = byte(rnd.Uint32())
			}
			write(t, filepath.Join(a, "saves", "World", "region", fmt.Sprintf("r.%d.0.mca", i)), string(data))
		}
		slow.Store(true)
		r := w.start("push", "--pack-folder="+winA)
		g.window("saving your game")
		time.Sleep(1500 * time.Millisecond) // let restic report some progress
		g.shot("windows-progress")
		// Enter presses the window's OK button, which closes it like
		// Cancel: the push goes on and asks; Enter again continues it.
		g.key("Return")
		select {
		case err := <-r.done:
			r.done <- err
			out, _ := os.ReadFile(r.out)
			t.Fatalf("Enter in the progress window ended the push: %v\n%s", err, out)
		case <-time.After(2 * time.Second):
		}
		g.window("saving your game")
		g.shot("windows-progress-stop")
		g.key("Return")
		time.Sleep(2 * time.Second)
		g.window("saving your game")
		g.key("Escape") // Cancel: asks again
		g.window("saving your game")
		g.key("Escape") // Stop
		code, out := r.wait()
		slow.Store(false)
		if code != 3 || !strings.Contains(out, "cancelled by the player") {
			t.Fatalf("exit %d, want 3\n%s", code, out)
		}
		w.ok("push", "--no-gui", "--pack-folder="+winA)
	})

	t.Run("hook-error", func(t *testing.T) {
		g.t = t
		winC, c := p.UserDir(t, "Minecraft")
		write(t, filepath.Join(c, ".cloud-sync", "sync.json"), "{not json")
		r := w.start("pull", "--pack-folder="+winC)
		g.window("^instance-sync")
		g.shot("windows-error")
		// On a loaded machine Wine may drop the first key: press OK until
		// the window is gone (at most three times).
		for range 3 {
			g.window("^instance-sync")
			g.key("Return")
			select {
			case err := <-r.done:
				r.done <- err
			case <-time.After(20 * time.Second):
				continue
			}
			break
		}
		if code, out := r.wait(); code != 1 || !strings.Contains(out, "sync.json") {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
	})
}

// winGUI runs instance-sync.exe under Wine on the test's display.
type winGUI struct {
	g   *gui
	p   *wintest.Prefix
	exe string
	env []string
	n   int
}

// winRun is a running instance-sync.exe. Its output goes to a file: Wine
// hands standard error on to the processes it starts for the desktop,
// so a pipe would stay open after the program exits.
type winRun struct {
	g      *gui
	cmd    *exec.Cmd
	out    string
	done   chan error
	exited chan struct{} // closed when the command has ended
}

func (w *winGUI) command(args ...string) (*exec.Cmd, string) {
	w.n++
	out := filepath.Join(w.g.dir, fmt.Sprintf("out-%d.txt", w.n))
	cmd := exec.Command("sh", append([]string{"-c", `exec "$0" "$@" >"$WINOUT" 2>&1`, w.p.Wine(), w.exe}, args...)...)
	cmd.Env = append(w.env, "WINOUT="+out)
	return cmd, out
}

func (w *winGUI) start(args ...string) *winRun {
	w.g.t.Helper()
	cmd, out := w.command(args...)
	if err := cmd.Start(); err != nil {
		w.g.t.Fatal(err)
	}
	r := &winRun{g: w.g, cmd: cmd, out: out, done: make(chan error, 1), exited: make(chan struct{})}
	go func() { r.done <- cmd.Wait(); close(r.exited) }()
	w.g.t.Cleanup(func() { _ = cmd.Process.Kill(); <-r.exited })
	return r
}

func (w *winGUI) ok(args ...string) {
	w.g.t.Helper()
	if code, out := w.start(args...).wait(); code != 0 {
		w.g.t.Fatalf("%v: exit %d\n%s", args, code, out)
	}
}

// wait returns the exit code and the output; a dialog nobody answered
// fails the test instead of hanging it.
func (r *winRun) wait() (int, string) {
	r.g.t.Helper()
	select {
	case err := <-r.done:
		out, _ := os.ReadFile(r.out)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			r.g.t.Fatal(err)
		}
		return 0, string(out)
	case <-time.After(180 * time.Second):
		_ = r.cmd.Process.Kill()
		out, _ := os.ReadFile(r.out)
		r.g.t.Fatalf("instance-sync.exe still running after 180s\n%s", out)
		return -1, ""
	}
}
