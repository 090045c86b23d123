//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// guiTools are what TestGUI needs: the command it looks for, the Debian
// package that has it (.ci/run installs it), and its name in the README.
var guiTools = []struct{ command, debian, name string }{
	{"Xvfb", "xvfb", "Xvfb"},
	{"zenity", "zenity", "zenity"},
	{"xdotool", "xdotool", "xdotool"},
	{"import", "imagemagick", "ImageMagick"},
}

// TestGUI opens every dialog of the real binary on a virtual X display
// (Xvfb) through the real zenity, saves a screenshot of each, and answers
// them with xdotool the way a player would: login (wrong password, then
// the right one → token written), conflict (Cancel launch → exit 3 and
// nothing changed; Use cloud → the cloud's files), progress (Cancel →
// restic stopped, exit 3, the next push works), a refused token in a hook
// (play without sync → exit 0; log in again → token stored, the pull runs)
// and a hook error.
//
// It skips when Xvfb, zenity, xdotool or ImageMagick's import are missing,
// except under CI=true, where .ci/run installs them. Screenshots go to
// $INSTANCE_SYNC_SCREENSHOTS when set (scripts/gui-check.sh refreshes
// docs/screenshots/ that way), else to a temporary folder.
func TestGUI(t *testing.T) {
	for _, tool := range guiTools {
		if _, err := exec.LookPath(tool.command); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: .ci/run installs xvfb zenity imagemagick xdotool (required under CI=true)", tool.command)
			}
			t.Skipf("%s not found: apt-get install xvfb zenity imagemagick xdotool", tool.command)
		}
	}
	if testing.Short() {
		t.Skip("-short")
	}
	restic := testenv.Restic(t)
	g := &gui{t: t, dir: t.TempDir()}
	g.shots = os.Getenv("INSTANCE_SYNC_SCREENSHOTS")
	if g.shots == "" {
		g.shots = filepath.Join(g.dir, "screenshots")
	}
	if err := os.MkdirAll(g.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	g.bin = filepath.Join(g.dir, "instance-sync")
	build := exec.Command("go", "build", "-o", g.bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g.display = startXvfb(t)

	srv, err := testserver.Start(filepath.Join(g.dir, "server"), "", map[string]string{"alice": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	// slow holds uploads of data packs back, so a push lasts long enough
	// for its progress window to open and be cancelled. A held request is
	// not told that its client went away (its body is unread), so the
	// cancelled push's uploads are let go when the subtest ends, and at
	// the latest before the server closes (Close waits for them).
	var slow atomic.Bool
	hold := newHold()
	defer srv.Close()
	defer hold.release()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if slow.Load() && r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/data/") {
			// Long enough that the push cannot end before the test
			// presses Escape, however slowly its window comes up.
			hold.wait(r, 5*time.Minute)
		}
		return false
	})
	home := filepath.Join(g.dir, "home")
	g.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"), "DISPLAY=" + g.display, "NO_AT_BRIDGE=1",
		"INSTANCE_SYNC_RESTIC=" + restic, "INSTANCE_SYNC_HOSTNAME=desk", "LANG=C.UTF-8", "INST_NAME=Skyblock",
		"INSTANCE_SYNC_DEBUG_UI=1", // the UI picked, in failure messages
	}
	for _, d := range []string{home, filepath.Join(home, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	a := filepath.Join(g.dir, "a")
	b := filepath.Join(g.dir, "b")
	cp := filepath.Join(g.dir, "a-copy")
	// The pulls below start change watchers in the background (their own
	// sessions, not our children): stop them before the folder goes.
	defer stopWatchers(t, a, b, cp)
	t.Run("login", func(t *testing.T) {
		g.t = t
		mkdirs(t, a)
		p := g.start("setup", "--url="+srv.URL, "--pack-folder="+a)
		g.window("instance-sync: log in$")
		g.shot("login-server")
		g.key("Return")
		g.window("log in to ")
		g.typeText("alice")
		g.key("Tab")
		g.typeText("wrong")
		g.shot("login-password")
		g.key("Return")
		g.window("instance-sync: log in$")
		g.shot("login-wrong-password")
		g.key("Return")
		g.window("log in to ")
		g.typeText("alice")
		g.key("Tab")
		g.typeText("pw")
		g.key("Return")
		g.window("which instance")
		g.shot("login-instance")
		g.key("Return")
		g.window("^instance-sync$")
		g.shot("setup-done")
		g.key("Return")
		if code, out := p.wait(); code != 0 {
			t.Fatalf("setup exit %d\n%s", code, out)
		}
		cfg, err := instance.Paths{Pack: a}.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		dirs := instance.UserDirs{Config: filepath.Join(home, ".config", "instance-sync"), Cache: filepath.Join(home, ".cache", "instance-sync")}
		tok, err := instance.ReadToken(dirs.TokenFile(cfg))
		if err != nil || tok.User != "alice" || tok.Password != "pw" {
			t.Fatalf("token %+v, %v", tok, err)
		}
	})

	// A second computer joins; both change the world: a conflict.
	level := func(pack string) string { return filepath.Join(pack, "saves", "World", "level.dat") }
	write(t, level(a), "level v1")
	g.ok("push", "--no-gui", "--pack-folder="+a)
	cfg, err := instance.Paths{Pack: a}.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	mkdirs(t, b)
	write(t, filepath.Join(g.dir, "alice.token"), "alice:pw\n")
	g.ok("init", "--url="+srv.URL, "--token-file="+filepath.Join(g.dir, "alice.token"), "--join="+cfg.InstanceID, "--pack-folder="+b)
	g.ok("pull", "--no-gui", "--pack-folder="+b)
	write(t, level(a), "progress made on a")
	write(t, filepath.Join(a, "saves", "Creative", "level.dat"), "a creative world")
	g.ok("push", "--no-gui", "--pack-folder="+a)
	write(t, level(b), "progress made on b")

	t.Run("conflict-cancel", func(t *testing.T) {
		g.t = t
		p := g.start("pull", "--pack-folder="+b)
		g.window("choose a version")
		g.shot("conflict")
		g.key("Escape")
		if code, out := p.wait(); code != 3 || !strings.Contains(out, "cancelled by the player") {
			t.Fatalf("exit %d, want 3\n%s", code, out)
		}
		if got := read(t, level(b)); got != "progress made on b" {
			t.Fatalf("cancel changed the world: %q", got)
		}
	})
	t.Run("conflict-use-cloud", func(t *testing.T) {
		g.t = t
		p := g.start("pull", "--pack-folder="+b)
		g.window("choose a version")
		g.key("Return")
		if code, out := p.wait(); code != 0 || !strings.Contains(out, "safety snapshot") {
			t.Fatalf("exit %d, want 0\n%s", code, out)
		}
		if got := read(t, level(b)); got != "progress made on a" {
			t.Fatalf("use cloud left %q", got)
		}
	})

	// Two worlds played on both computers: one dialog per world, each
	// naming its world. Cancel on the second changes nothing, even after
	// the first was answered; Use cloud on both takes both.
	t.Run("conflict-per-world", func(t *testing.T) {
		g.t = t
		creative := func(pack string) string { return filepath.Join(pack, "saves", "Creative", "level.dat") }
		write(t, level(a), "world, a's second session")
		write(t, creative(a), "creative, a's second session")
		g.ok("push", "--no-gui", "--pack-folder="+a)
		write(t, level(b), "world, b's second session")
		write(t, creative(b), "creative, b's second session")
		p := g.start("pull", "--pack-folder="+b)
		g.window("choose a version of Creative")
		g.key("Return")
		g.window("choose a version of World")
		g.key("Escape")
		if code, out := p.wait(); code != 3 || !strings.Contains(out, "cancelled by the player") {
			t.Fatalf("exit %d, want 3\n%s", code, out)
		}
		if got := read(t, creative(b)); got != "creative, b's second session" {
			t.Fatalf("cancel on the second world changed the first: %q", got)
		}
		p = g.start("pull", "--pack-folder="+b)
		g.window("choose a version of Creative")
		g.key("Return")
		g.window("choose a version of World")
		g.key("Return")
		if code, out := p.wait(); code != 0 || !strings.Contains(out, "safety snapshot") {
			t.Fatalf("exit %d, want 0\n%s", code, out)
		}
		if got := read(t, level(b)) + "|" + read(t, creative(b)); got != "world, a's second session|creative, a's second session" {
			t.Fatalf("use cloud twice left %q", got)
		}
	})

	t.Run("progress-cancel", func(t *testing.T) {
		g.t = t
		// Incompressible region files: restic fills a pack, cannot upload
		// it, and the window shows the push part way.
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := range 4 {
			data := make([]byte, 12<<20)
			for j := range data {
				data[j] = byte(rnd.Uint32())
			}
			write(t, filepath.Join(a, "saves", "World", "region", fmt.Sprintf("r.%d.0.mca", i)), string(data))
		}
		slow.Store(true)
		// Also when the subtest fails: the next ones' uploads go through.
		t.Cleanup(func() { slow.Store(false); hold.release() })
		p := g.start("push", "--pack-folder="+a)
		g.window("saving your game")
		time.Sleep(1000 * time.Millisecond) // let restic report some progress
		g.shot("progress")
		g.key("Escape")
		code, out := p.wait()
		slow.Store(false)
		hold.release()
		if code != 3 || !strings.Contains(out, "cancelled by the player") {
			t.Fatalf("exit %d, want 3\n%s", code, out)
		}
		t.Logf("cancelled push:\n%s", out)
		// Consistent afterwards: the next push records the files.
		g.ok("push", "--no-gui", "--pack-folder="+a)
	})

	// The server no longer accepts the token (rotated password): the hook
	// offers to log in again, then syncs; or the player plays without sync.
	t.Run("relogin", func(t *testing.T) {
		g.t = t
		// No change watcher left running by these pulls.
		env := g.env
		g.env = append(env[:len(env):len(env)], "INSTANCE_SYNC_WATCH=0")
		defer func() { g.env = env }()
		bad := filepath.Join(g.dir, "rotated.token")
		write(t, bad, "alice:the-old-password\n")
		if err := os.Chmod(bad, 0o600); err != nil {
			t.Fatal(err)
		}
		p := g.start("pull", "--token-file="+bad, "--pack-folder="+b)
		g.window("log in again")
		g.shot("relogin")
		g.key("Escape")
		if code, out := p.wait(); code != 0 || !strings.Contains(out, "playing without sync this time") {
			t.Fatalf("play without sync: exit %d, want 0\n%s", code, out)
		}
		p = g.start("pull", "--token-file="+bad, "--pack-folder="+b)
		g.window("log in again")
		g.key("Return")
		g.window("instance-sync: log in$")
		g.key("Return")
		g.window("log in to ")
		g.typeText("alice")
		g.key("Tab")
		g.typeText("pw")
		g.key("Return")
		if code, out := p.wait(); code != 0 || strings.Contains(out, "wrong user or password") {
			t.Fatalf("log in again: exit %d, want 0 and a pull\n%s", code, out)
		}
		if tok, err := instance.ReadToken(bad); err != nil || tok.Password != "pw" {
			t.Fatalf("the new token was not stored: %+v %v", tok, err)
		}
	})

	// A copy of a's folder: the hook asks what to do with it. "Not at all"
	// (or closing the window) pauses it; "Same instance" syncs it from
	// then on.
	t.Run("copy", func(t *testing.T) {
		g.t = t
		env := g.env
		g.env = append(env[:len(env):len(env)], "INSTANCE_SYNC_WATCH=0")
		defer func() { g.env = env }()
		copyTree(t, a, cp)
		p := g.start("push", "--pack-folder="+cp)
		g.window("a copied instance")
		g.shot("copy")
		g.key("Escape")
		if code, out := p.wait(); code != 0 || !strings.Contains(out, "sync is off for this copy") {
			t.Fatalf("not at all: exit %d, want 0\n%s", code, out)
		}
		if _, err := os.Stat(filepath.Join(cp, ".cloud-sync", "sync.json.disabled")); err != nil {
			t.Fatalf("not at all did not pause the copy: %v", err)
		}
		g.ok("enable", "--pack-folder="+cp)
		p = g.start("pull", "--pack-folder="+cp)
		g.window("a copied instance")
		g.key("Return")
		if code, out := p.wait(); code != 0 || strings.Contains(out, "copy of instance") {
			t.Fatalf("same instance: exit %d, want 0 and a pull\n%s", code, out)
		}
		st, err := instance.Paths{Pack: cp}.LoadState()
		if err != nil || st.Home == nil || st.Home.Path != cp {
			t.Fatalf("the copy's home: %+v, %v", st.Home, err)
		}
	})

	t.Run("hook-error", func(t *testing.T) {
		g.t = t
		c := filepath.Join(g.dir, "c")
		write(t, filepath.Join(c, ".cloud-sync", "sync.json"), "{not json")
		write(t, filepath.Join(c, ".cloud-sync", "token"), "alice:pw\n")
		p := g.start("pull", "--pack-folder="+c)
		g.window("^instance-sync")
		g.shot("error")
		g.key("Return")
		if code, out := p.wait(); code != 1 || !strings.Contains(out, "sync.json") {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
	})
}

type gui struct {
	t       *testing.T
	dir     string
	bin     string
	display string
	env     []string
	shots   string
	win     string // the window last found
	running *proc  // the command last started, for failure messages
}

type proc struct {
	g      *gui
	cmd    *exec.Cmd
	out    *lockedBuffer
	done   chan error
	exited chan struct{} // closed when the command has ended
}

// lockedBuffer is the command's output, readable while it still runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (g *gui) start(args ...string) *proc {
	g.t.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	p := &proc{g: g, cmd: cmd, out: out, done: make(chan error, 1), exited: make(chan struct{})}
	g.running = p
	go func() { p.done <- cmd.Wait(); close(p.exited) }()
	g.t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

// wait returns the exit code and the combined output; a dialog nobody
// answered fails the test instead of hanging it.
func (p *proc) wait() (int, string) {
	p.g.t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), p.out.String()
		}
		if err != nil {
			p.g.t.Fatal(err)
		}
		return 0, p.out.String()
	case <-time.After(120 * time.Second):
		_ = p.cmd.Process.Kill()
		p.g.t.Fatalf("instance-sync still running after 120s\n%s", p.out.String())
		return -1, ""
	}
}

func (g *gui) ok(args ...string) {
	g.t.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	if strings.Contains(strings.Join(args, " "), "/a") {
		cmd.Env = append(cmd.Env, "INSTANCE_SYNC_HOSTNAME=laptop") // the other computer
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		g.t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func (g *gui) xdotool(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = []string{"DISPLAY=" + g.display, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// window waits for a visible window whose title matches the regular
// expression and gives it the keyboard.
func (g *gui) window(title string) {
	g.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := g.xdotool("search", "--onlyvisible", "--name", title)
		if err == nil && out != "" {
			ids := strings.Fields(out)
			g.win = ids[len(ids)-1]
			break
		}
		if time.Now().After(deadline) {
			output := "(none started)"
			if g.running != nil {
				output = g.running.out.String()
			}
			g.t.Fatalf("no window titled %q appeared; visible: %s; instance-sync printed:\n%s", title, g.visible(), output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// GTK draws and takes focus a moment after mapping the window; on a
	// loaded machine (the race detector) later than usual, and keys typed
	// before the focus holds are lost. Focus until it sticks.
	time.Sleep(700 * time.Millisecond)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if _, err := g.xdotool("windowfocus", "--sync", g.win); err != nil {
			g.t.Fatalf("focus %q: %v", title, err)
		}
		time.Sleep(200 * time.Millisecond)
		if got, err := g.xdotool("getwindowfocus"); err == nil && got == g.win {
			return
		}
	}
	g.t.Fatalf("window %q does not keep the keyboard focus", title)
}

// visible names the visible windows, for a failure message.
func (g *gui) visible() string {
	ids, _ := g.xdotool("search", "--onlyvisible", "--name", ".")
	var names []string
	for _, id := range strings.Fields(ids) {
		if n, err := g.xdotool("getwindowname", id); err == nil && n != "" {
			names = append(names, strconv.Quote(n))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (g *gui) key(k string) {
	g.t.Helper()
	if _, err := g.xdotool("key", "--clearmodifiers", k); err != nil {
		g.t.Fatalf("key %s: %v", k, err)
	}
	time.Sleep(300 * time.Millisecond)
}

func (g *gui) typeText(s string) {
	g.t.Helper()
	if _, err := g.xdotool("type", "--delay", "30", s); err != nil {
		g.t.Fatalf("type: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
}

// shot saves the dialog as name.png: the whole screen, trimmed to the
// window (there is no window manager, so nothing else is drawn).
func (g *gui) shot(name string) {
	g.t.Helper()
	file := filepath.Join(g.shots, name+".png")
	cmd := exec.Command("import", "-display", g.display, "-window", "root", "-trim", "+repage", "-strip", "-colors", "128", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		g.t.Fatalf("import: %v\n%s", err, out)
	}
}

// startXvfb starts a virtual display on a free number (Xvfb picks it and
// reports it through -displayfd) and stops it when the test ends.
//
// -noreset: by default an X server resets when its last client
// disconnects, and a client that connects meanwhile is refused. Here the
// last client goes whenever a dialog is answered (xdotool has exited),
// and the next dialog opens right then: zenity's "cannot open display"
// exits like Cancel, so a dialog that never appeared read as the player's
// answer (TestGUI/relogin: "play without sync").
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	// Terminated (not killed), Xvfb removes its socket file.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 32)
		n, _ := r.Read(buf)
		got <- strings.TrimSpace(string(buf[:n]))
	}()
	select {
	case s := <-got:
		if _, err := strconv.Atoi(s); err != nil {
			t.Fatalf("Xvfb did not start: %q\n%s", s, errb.String())
		}
		return ":" + s
	case <-time.After(20 * time.Second):
		t.Fatalf("Xvfb did not start\n%s", errb.String())
	}
	return ""
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	mkdirs(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(string(b))
}

// copyTree copies the folder src to dst, the way a launcher copies an
// instance.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(to, 0o755)
		case e.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, 0o600)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hold keeps requests waiting until it is released (or a time passes).
type hold struct {
	once sync.Once
	ch   chan struct{}
}

func newHold() *hold { return &hold{ch: make(chan struct{})} }

func (h *hold) wait(r *http.Request, most time.Duration) {
	select {
	case <-h.ch:
	case <-r.Context().Done():
	case <-time.After(most):
	}
}

func (h *hold) release() { h.once.Do(func() { close(h.ch) }) }

// stopWatchers ends the change watchers running for the packs and waits
// until they are gone (up to 30 s).
func stopWatchers(t *testing.T, packs ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, pack := range packs {
		for pids := watch.Pids(pack); len(pids) > 0; pids = watch.Pids(pack) {
			if time.Now().After(deadline) {
				t.Errorf("a change watcher still runs for %s: %v", pack, pids)
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
