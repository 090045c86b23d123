//go:build !windows

package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
	"git.timemachine.center/timemachine/instance-sync/internal/wintest"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// TestWindows runs testdata/windows/*.txtar: the Windows build of
// instance-sync and restic.exe under Wine, beside the Linux build, against
// the same in-process rest-server. Each script gets, besides what
// TestScripts gives:
//
//	$WPACKS / $UPACKS  a fresh folder in the Windows user's profile
//	                   (C:\users\Zoë Quinn\Minecraft …), Windows and Unix path
//	$WINWORK           $WORK as Windows sees it (Z:\…)
//	$WINHOME / $UWINHOME  the Windows user's profile, Windows and Unix path
//	$WINRESTIC         restic.exe (given to win as INSTANCE_SYNC_RESTIC
//	                   unless empty)
//	$WINFIXTURE        fixture.exe (a game that writes a file and exits N)
//
// and the commands win, winlock, tocrlf and crlf (see their comments).
func TestWindows(t *testing.T) {
	p := wintest.Require(t)
	realRestic := testenv.Restic(t)
	bin := t.TempDir()
	var exe, resticExe, fixture string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); resticExe = wintest.ResticExe(t) }()
	go func() { defer wg.Done(); fixture = wintest.Fixture(t) }()
	exe = wintest.GoBuild(t, bin, "./cmd/instance-sync")
	wg.Wait()
	if t.Failed() {
		return
	}

	params := scriptParams(realRestic, "testdata/windows")
	setup := params.Setup
	params.Setup = func(env *testscript.Env) error {
		if err := setup(env); err != nil {
			return err
		}
		home, err := p.UnixPath(p.Home())
		if err != nil {
			return err
		}
		packs, err := os.MkdirTemp(home, "Minecraft ")
		if err != nil {
			return err
		}
		env.Defer(func() { killWatchers(p.WinPath(packs)); os.RemoveAll(packs) })
		for _, kv := range p.Environ(nil) {
			k, v, _ := strings.Cut(kv, "=")
			env.Setenv(k, v)
		}
		env.Setenv("INSTANCE_SYNC_NO_GUI", "1") // Wine here has no display
		// No change watchers left behind: watch.txtar turns them on.
		env.Setenv("INSTANCE_SYNC_WATCH", "0")
		env.Setenv("WPACKS", p.WinPath(packs))
		env.Setenv("UPACKS", packs)
		env.Setenv("WINWORK", p.WinPath(env.WorkDir))
		env.Setenv("WINHOME", p.Home())
		env.Setenv("UWINHOME", home)
		env.Setenv("WINRESTIC", p.WinPath(resticExe))
		env.Setenv("UWINRESTIC", resticExe)
		env.Setenv("WINFIXTURE", p.WinPath(fixture))
		return nil
	}
	params.Cmds["win"] = func(ts *testscript.TestScript, neg bool, args []string) { cmdWin(ts, neg, p, exe, args) }
	params.Cmds["winlock"] = func(ts *testscript.TestScript, neg bool, args []string) { cmdWinLock(ts, p, fixture, args) }
	params.Cmds["winwatching"] = cmdWinWatching
	params.Cmds["tocrlf"] = cmdToCRLF
	params.Cmds["crlf"] = cmdCRLF
	testscript.Run(t, params)
}

// killWatchers ends the Windows change watchers of the pack folders
// under winDir: Wine does not tell them that the test removed their
// folders.
func killWatchers(winDir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmdline), " watch --pack-folder="+winDir) {
			if pr, err := os.FindProcess(pid); err == nil {
				_ = pr.Kill()
			}
		}
	}
}

// win [-exit=N] ARGS...: run the Windows instance-sync.exe under Wine with
// ARGS, INSTANCE_SYNC_RESTIC=$WINRESTIC (when set) and the script's
// environment; its output is what stdout/stderr check next. -exit=N
// expects exit code N.
func cmdWin(ts *testscript.TestScript, neg bool, p *wintest.Prefix, exe string, args []string) {
	want := -1
	if len(args) > 0 && strings.HasPrefix(args[0], "-exit=") {
		n, err := strconv.Atoi(strings.TrimPrefix(args[0], "-exit="))
		ts.Check(err)
		want, args = n, args[1:]
	}
	if r := ts.Getenv("WINRESTIC"); r != "" {
		old := ts.Getenv("INSTANCE_SYNC_RESTIC")
		ts.Setenv("INSTANCE_SYNC_RESTIC", r)
		defer ts.Setenv("INSTANCE_SYNC_RESTIC", old)
	}
	// Wine hands its standard error to every process a Windows program
	// starts, the detached change watcher included, so wine writes to
	// files: a pipe would stay open after instance-sync.exe exits.
	out := filepath.Join(ts.Getenv("WORK"), ".win-out")
	script := `"$0" "$@" >"$WINOUT.1" 2>"$WINOUT.2"; c=$?; cat "$WINOUT.1"; cat "$WINOUT.2" >&2; exit $c`
	ts.Setenv("WINOUT", out)
	err := ts.Exec("sh", append([]string{"-c", script, p.Wine(), exe}, args...)...)
	// instance-sync always says why it fails; exit 1 with no output at all
	// is Wine failing to start it, seen rarely on a loaded machine. Then
	// it ran nothing, and it is run again.
	for try := 0; try < 2 && wintest.ExitCode(err) == 1 && ts.ReadFile("stdout") == "" && ts.ReadFile("stderr") == ""; try++ {
		ts.Logf("instance-sync.exe exited 1 without a word (Wine did not start it); running it again")
		err = ts.Exec("sh", append([]string{"-c", script, p.Wine(), exe}, args...)...)
	}
	code := wintest.ExitCode(err)
	fail := ts.Fatalf // testscript has logged the output
	switch {
	case want >= 0 && code != want:
		fail("instance-sync.exe exited with %d (%v), want %d", code, err, want)
	case want < 0 && neg && err == nil:
		fail("instance-sync.exe succeeded unexpectedly")
	case want < 0 && !neg && err != nil:
		fail("instance-sync.exe: %v", err)
	}
}

// winlock FILE: a Windows process locks FILE as Java's FileChannel.lock
// does (LockFileEx) and holds it for the rest of the script.
func cmdWinLock(ts *testscript.TestScript, p *wintest.Prefix, fixture string, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: winlock FILE")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := p.Command(ctx, nil, fixture, "lock", p.WinPath(ts.MkAbs(args[0])))
	stdin, err := cmd.StdinPipe()
	ts.Check(err)
	stdout, err := cmd.StdoutPipe()
	ts.Check(err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ts.Check(cmd.Start())
	done := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "locked" {
			err = io.ErrUnexpectedEOF
		}
		done <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var lerr error
	select {
	case lerr = <-done:
	case <-time.After(2 * time.Minute):
		lerr = context.DeadlineExceeded
	}
	ts.Defer(func() {
		stdin.Close()
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
		}
		cancel()
	})
	if lerr != nil {
		ts.Fatalf("fixture.exe lock %s: %v\n%s", args[0], lerr, stderr.String())
	}
}

// winwatching PACK: the Windows change watcher of PACK (a Windows path)
// answers, waiting up to a minute for its first walk; with !, it has
// ended (waiting as long).
func cmdWinWatching(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: winwatching PACK")
	}
	addr := filepath.Join(ts.Getenv("UWINHOME"), "AppData", "Local", "instance-sync", "watch", watch.InfoName(args[0])+".addr")
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := os.Stat(addr)
		if (err == nil) != neg {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("change watcher of %s: answering is %v, want %v", args[0], err == nil, !neg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tocrlf SRC DST: copy SRC to DST with CRLF line endings, creating DST's
// folder.
func cmdToCRLF(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: tocrlf SRC DST")
	}
	data := strings.ReplaceAll(ts.ReadFile(args[0]), "\n", "\r\n")
	dst := ts.MkAbs(args[1])
	ts.Check(os.MkdirAll(filepath.Dir(dst), 0o755))
	ts.Check(os.WriteFile(dst, []byte(data), 0o644))
}

// crlf FILE: every line of FILE ends with CRLF.
func cmdCRLF(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: crlf FILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	bare := bytes.Count(data, []byte("\n")) - bytes.Count(data, []byte("\r\n"))
	if (bare == 0 && len(data) > 0 && bytes.HasSuffix(data, []byte("\r\n"))) == neg {
		ts.Fatalf("%s: %d lines end without CR (want %s)", args[0], bare, map[bool]string{true: "some", false: "none"}[neg])
	}
}
