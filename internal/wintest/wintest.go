//go:build !windows

// Package wintest runs Windows programs under Wine for tests: the Windows
// build of instance-sync, restic.exe and small C fixtures, in a Wine prefix
// made once per machine and shared by every test binary.
//
// Debian's Wine 8 lacks ProcessPrng (bcryptprimitives.dll), which every Go
// ≥ 1.22 Windows program calls at start-up; the prefix gets a native
// stand-in built from fixtures/bcryptprimitives.c with MinGW. A test that
// needs Wine skips when wine or MinGW is missing, except under CI=true,
// where that is a failure.
package wintest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

//go:embed fixtures/*.c
var fixtures embed.FS

// User is the Windows user of the prefix: a space and a non-ASCII letter,
// as many players' names have, so every path a test uses has both.
const User = "Zoë Quinn"

// mingw is Debian's cross compiler for 64-bit Windows.
const mingw = "x86_64-w64-mingw32-gcc"

// Prefix is a Wine prefix ready to run Go Windows programs.
type Prefix struct {
	Dir  string // WINEPREFIX
	wine string
}

var (
	sharedOnce   sync.Once
	sharedPrefix *Prefix
	sharedErr    error
)

// Require skips the test when Wine or MinGW is missing (fails under
// CI=true) and returns the prefix shared by every test of this machine,
// creating it the first time (wineboot takes 5-15 s).
func Require(t testing.TB) *Prefix {
	t.Helper()
	wine := findWine()
	_, gccErr := exec.LookPath(mingw)
	if wine == "" || gccErr != nil {
		msg := "wine64 and " + mingw + " are needed for the Windows tests (Debian: apt-get install wine64 gcc-mingw-w64-x86-64)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (required under CI=true)")
		}
		t.Skip(msg)
	}
	sharedOnce.Do(func() { sharedPrefix, sharedErr = setup(wine) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedPrefix
}

func findWine() string {
	for _, name := range []string{"wine64", "wine"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/lib/wine/wine64"); err == nil {
		return "/usr/lib/wine/wine64"
	}
	return ""
}

// cacheDir is where the prefix and built executables are kept between
// runs.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "instance-sync-test", "wine")
	return dir, os.MkdirAll(dir, 0o700)
}

// locked runs f holding an exclusive lock on dir/name.lock, so that test
// binaries running at once create each cached thing once.
func locked(dir, name string, f func() error) error {
	l, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := unix.Flock(int(l.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	defer func() { _ = unix.Flock(int(l.Fd()), unix.LOCK_UN) }()
	return f()
}

func shortHash(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// setup returns the cached prefix, making it when missing: wineboot with
// the test user, then the ProcessPrng stand-in in system32. It is made
// under a temporary name and renamed, so a half-made prefix is never used.
func setup(wine string) (*Prefix, error) {
	cache, err := cacheDir()
	if err != nil {
		return nil, err
	}
	shim, _ := fixtures.ReadFile("fixtures/bcryptprimitives.c")
	version, _ := exec.Command(wine, "--version").Output()
	dir := filepath.Join(cache, "prefix-"+shortHash(bytes.TrimSpace(version), shim, []byte(User)))
	p := &Prefix{Dir: dir, wine: wine}
	err = locked(cache, "prefix", func() error {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			return nil
		}
		tmp, err := os.MkdirTemp(cache, "making-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		t := &Prefix{Dir: filepath.Join(tmp, "prefix"), wine: wine}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		boot := exec.CommandContext(ctx, filepath.Join(filepath.Dir(wine), "wineboot"), "-i")
		if _, err := os.Stat(boot.Path); err != nil {
			boot = exec.CommandContext(ctx, wine, "wineboot", "-i")
		}
		boot.Env = t.Environ(os.Environ())
		if out, err := boot.CombinedOutput(); err != nil {
			return fmt.Errorf("wineboot -i: %v\n%s", err, out)
		}
		// The registry is written when the prefix's wineserver exits.
		t.waitServer(ctx)
		dll := filepath.Join(t.Dir, "drive_c", "windows", "system32", "bcryptprimitives.dll")
		if err := compile(ctx, shim, dll, "-shared", "-ladvapi32"); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(t.Dir, "ready"), nil, 0o600); err != nil {
			return err
		}
		_ = os.RemoveAll(dir)
		return os.Rename(t.Dir, dir)
	})
	if err != nil {
		return nil, fmt.Errorf("making the Wine prefix: %w", err)
	}
	return p, nil
}

// waitServer waits until the prefix's wineserver has exited.
func (p *Prefix) waitServer(ctx context.Context) {
	server := filepath.Join(filepath.Dir(p.wine), "wineserver")
	if _, err := os.Stat(server); err != nil {
		server = "wineserver"
	}
	w := exec.CommandContext(ctx, server, "-w")
	w.Env = p.Environ(os.Environ())
	_ = w.Run()
}

func compile(ctx context.Context, src []byte, out string, flags ...string) error {
	dir, err := os.MkdirTemp("", "wintest-cc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := filepath.Join(dir, "src.c")
	if err := os.WriteFile(c, src, 0o600); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "out"+filepath.Ext(out)) // MinGW adds .exe to a bare name
	args := append([]string{"-O2", "-o", tmp, c}, flags...)
	if out, err := exec.CommandContext(ctx, mingw, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", mingw, err, out)
	}
	data, err := os.ReadFile(tmp)
	if err != nil {
		return err
	}
	return writeAtomic(out, data, 0o755)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".partial"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Environ returns base with what Wine needs to run Go programs in p:
// the prefix, the stand-in DLL enabled, Wine's own messages off, and
// the Windows user of the prefix.
func (p *Prefix) Environ(base []string) []string {
	drop := map[string]bool{"WINEPREFIX": true, "WINEDEBUG": true, "WINEDLLOVERRIDES": true, "USER": true, "LOGNAME": true, "LANG": true, "LC_ALL": true}
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env,
		"WINEPREFIX="+p.Dir,
		// Wine's own messages off; INSTANCE_SYNC_TEST_WINEDEBUG turns
		// some on to see why a program did not start.
		"WINEDEBUG="+winedebug(),
		// mscoree and mshtml off: Wine would offer to install Mono and Gecko.
		"WINEDLLOVERRIDES=bcryptprimitives=n,b;mscoree,mshtml=",
		"USER="+User,
		"LOGNAME="+User,
		// Wine decodes arguments and names from the locale's encoding.
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
	)
}

func winedebug() string {
	if v := os.Getenv("INSTANCE_SYNC_TEST_WINEDEBUG"); v != "" {
		return v
	}
	return "-all"
}

// Wine is the path of the wine loader.
func (p *Prefix) Wine() string { return p.wine }

// Command runs the Windows program exe (a Unix path) under Wine with the
// environment base (nil: this process's) plus p's.
func (p *Prefix) Command(ctx context.Context, base []string, exe string, args ...string) *exec.Cmd {
	if base == nil {
		base = os.Environ()
	}
	cmd := exec.CommandContext(ctx, p.wine, append([]string{exe}, args...)...)
	cmd.Env = p.Environ(base)
	return cmd
}

// Home is the Windows user's profile folder, as Windows programs see it.
func (p *Prefix) Home() string { return `C:\users\` + User }

// WinPath is the Windows path of the Unix path unix: C:\ inside the
// prefix's drive_c, Z:\ (Wine's whole Unix file system) elsewhere.
func (p *Prefix) WinPath(unix string) string {
	driveC := filepath.Join(p.Dir, "drive_c")
	if rel, err := filepath.Rel(driveC, unix); err == nil && !strings.HasPrefix(rel, "..") {
		if rel == "." {
			return `C:\`
		}
		return `C:\` + strings.ReplaceAll(rel, "/", `\`)
	}
	return "Z:" + strings.ReplaceAll(unix, "/", `\`)
}

// UnixPath is the Unix path of a C:\ or Z:\ Windows path.
func (p *Prefix) UnixPath(win string) (string, error) {
	if len(win) < 3 || win[1] != ':' || win[2] != '\\' {
		return "", fmt.Errorf("%q is not an absolute Windows path", win)
	}
	rest := filepath.FromSlash(strings.ReplaceAll(win[3:], `\`, "/"))
	switch strings.ToUpper(win[:1]) {
	case "C":
		return filepath.Join(p.Dir, "drive_c", rest), nil
	case "Z":
		return "/" + rest, nil
	}
	return "", fmt.Errorf("%q: only C: and Z: are mapped", win)
}

// UserDir makes a fresh folder in the Windows user's profile for one test
// and returns its Windows and Unix paths; it is removed after the test.
func (p *Prefix) UserDir(t testing.TB, name string) (win, unixPath string) {
	t.Helper()
	home, err := p.UnixPath(p.Home())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(home, name+" ")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return p.WinPath(dir), dir
}

// GoBuild cross-builds the Go package pkg (a path relative to the module
// root, e.g. "./cmd/instance-sync") for windows/amd64 into dir and returns
// the executable's path.
func GoBuild(t testing.TB, dir, pkg string) string {
	t.Helper()
	root := testenv.ModuleRoot()
	if root == "" {
		t.Fatal("module root not found")
	}
	out := filepath.Join(dir, filepath.Base(pkg)+".exe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// ResticExe returns restic.exe 0.18.1 built from the tools module:
// $INSTANCE_SYNC_TEST_RESTIC_EXE, .bin/restic.exe (make tools), or one
// built into the cache the first time (minutes on a small machine).
func ResticExe(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("INSTANCE_SYNC_TEST_RESTIC_EXE"); p != "" {
		return p
	}
	root := testenv.ModuleRoot()
	if root == "" {
		t.Fatal("module root not found")
	}
	if p := filepath.Join(root, ".bin", "restic.exe"); exists(p) {
		return p
	}
	sum, err := os.ReadFile(filepath.Join(root, "tools", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := cacheDir()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(cache, "restic-"+shortHash(sum, []byte(runtime.Version()))+".exe")
	err = locked(cache, "restic", func() error {
		if exists(out) {
			return nil
		}
		cmd := exec.Command("go", "build", "-o", out+".partial", "github.com/restic/restic/cmd/restic")
		cmd.Dir = filepath.Join(root, "tools")
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("GOOS=windows go build restic: %v\n%s", err, b)
		}
		return os.Rename(out+".partial", out)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Fixture returns fixtures/fixture.c built for Windows (see its comment
// for what it does), cached by its source.
func Fixture(t testing.TB) string {
	t.Helper()
	src, err := fixtures.ReadFile("fixtures/fixture.c")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := cacheDir()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(cache, "fixture-"+shortHash(src)+".exe")
	err = locked(cache, "fixture", func() error {
		if exists(out) {
			return nil
		}
		return compile(context.Background(), src, out, "-municode")
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ExitCode is the exit code of a finished command's error: 0 for nil,
// -1 when it did not run to an exit.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
