package resticbin

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// inCI reports whether a missing prerequisite must fail instead of skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips locally but fails in CI, where every test must run.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf("CI=true but "+format, args...)
	}
	t.Skipf(format, args...)
}

// fakeRestic writes a shell script that answers "version" like restic.
// Shell scripts need a Unix; the Windows code paths are covered by the
// pure tests below, which compile and run everywhere.
func fakeRestic(t *testing.T, dir, name, version string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("fake restic is a shell script")
	}
	p := filepath.Join(dir, name)
	script := "#!/bin/sh\necho 'restic " + version + " compiled with go1.24.0 on " + runtime.GOOS + "/" + runtime.GOARCH + "'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// noEnv and noPath keep the developer's own restic out of the tests.
func noEnv(string) string           { return "" }
func noPath(string) (string, error) { return "", exec.ErrNotFound }
func pathTo(p string) func(string) (string, error) {
	return func(string) (string, error) { return p, nil }
}

func TestAtLeast(t *testing.T) {
	for _, c := range []struct {
		v, min string
		want   bool
	}{
		{"0.18.1", "0.18.1", true},
		{"0.18.2", "0.18.1", true},
		{"0.19.0", "0.18.1", true},
		{"1.0.0", "0.18.1", true},
		{"0.18.0", "0.18.1", false},
		{"0.17.3", "0.18.1", false},
		{"0.9.9", "0.18.1", false},
	} {
		if got := AtLeast(c.v, c.min); got != c.want {
			t.Errorf("AtLeast(%q, %q) = %v, want %v", c.v, c.min, got, c.want)
		}
	}
}

func TestLookupOrder(t *testing.T) {
	bin := t.TempDir()
	flag := fakeRestic(t, bin, "flag-restic", "0.18.1")
	env := fakeRestic(t, bin, "env-restic", "0.18.1")
	onPath := fakeRestic(t, bin, "restic", "0.18.1")
	cache := t.TempDir()
	pack := t.TempDir()
	if err := os.MkdirAll(filepath.Join(pack, ".cloud-sync"), 0o755); err != nil {
		t.Fatal(err)
	}
	cached := fakeRestic(t, cache, ExeName(), Version)
	legacy := fakeRestic(t, filepath.Join(pack, ".cloud-sync"), ExeName(), Version)
	exeDir := t.TempDir()
	exe := filepath.Join(exeDir, "instance-sync")
	bundled := fakeRestic(t, exeDir, ExeName(), Version)
	envSet := func(k string) string {
		if k == "INSTANCE_SYNC_RESTIC" {
			return env
		}
		return ""
	}
	ctx := context.Background()
	check := func(o Options, wantSource, wantPath string) {
		t.Helper()
		o.NoDownload = true
		f, err := Find(ctx, o)
		if err != nil {
			t.Fatalf("want %s: %v", wantSource, err)
		}
		if f.Source != wantSource || f.Path != wantPath {
			t.Fatalf("got %s %s, want %s %s", f.Source, f.Path, wantSource, wantPath)
		}
	}
	all := Options{Flag: flag, Getenv: envSet, CacheDir: cache, PackFolder: pack, LookPath: pathTo(onPath), Exe: exe}
	check(all, "flag", flag)
	all.Flag = ""
	check(all, "env", env)
	all.Getenv = noEnv
	check(all, "bundled", bundled)
	os.Remove(bundled)
	check(all, "cache", cached)
	os.Remove(cached)
	check(all, "legacy", legacy)
	os.Remove(legacy)
	check(all, "path", onPath)

	_, err := Find(ctx, Options{Flag: filepath.Join(bin, "nope"), Getenv: noEnv})
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "--restic-binary") {
		t.Fatalf("missing flag target: %v", err)
	}
}

// An older restic on PATH must be ignored: its repository format or flags
// may differ from what instance-sync was tested with.
func TestOlderResticOnPathIgnored(t *testing.T) {
	bin := t.TempDir()
	cache := t.TempDir()
	ctx := context.Background()

	fakeRestic(t, bin, "restic", "0.17.3")
	t.Setenv("PATH", bin)
	_, err := Find(ctx, Options{CacheDir: cache, Getenv: noEnv, NoDownload: true})
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("restic 0.17.3 on PATH: got %v, want ErrMissing", err)
	}

	// Positive control: the same lookup accepts a new enough restic, so the
	// test above fails if PATH lookup stops working rather than passing.
	for _, v := range []string{"0.18.1", "0.19.0"} {
		p := fakeRestic(t, bin, "restic", v)
		f, err := Find(ctx, Options{CacheDir: cache, Getenv: noEnv, NoDownload: true})
		if err != nil || f.Source != "path" || f.Path != p || f.Version != v {
			t.Fatalf("restic %s on PATH: got %+v, %v", v, f, err)
		}
	}
}

func TestNoDownloadIsErrMissing(t *testing.T) {
	cache := t.TempDir()
	_, err := Find(context.Background(), Options{CacheDir: cache, Getenv: noEnv, LookPath: noPath, NoDownload: true, BaseURL: "http://127.0.0.1:1"})
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("got %v, want ErrMissing", err)
	}
	msg := err.Error()
	for _, want := range []string{"--restic-binary", "$INSTANCE_SYNC_RESTIC", filepath.Join(cache, ExeName())} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
}

// TestNoCacheDirNamesEveryWay: without a cache folder the error still
// names both ways to point at a restic.
func TestNoCacheDirNamesEveryWay(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("LocalAppData", "")
	_, err := Find(context.Background(), Options{Getenv: noEnv, LookPath: noPath, NoDownload: true})
	if err == nil {
		t.Skip("this system has a per-user cache folder without $HOME")
	}
	for _, want := range []string{"--restic-binary", "$INSTANCE_SYNC_RESTIC"} {
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	cache := t.TempDir()
	ctx := context.Background()
	o := Options{CacheDir: cache, Getenv: noEnv, LookPath: noPath}
	if got := Describe(ctx, o); !strings.Contains(got, "downloaded to "+filepath.Join(cache, ExeName())) {
		t.Errorf("nothing installed: %q", got)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("Describe touched the cache: %v", entries)
	}
	p := fakeRestic(t, cache, ExeName(), Version)
	if got, want := Describe(ctx, o), "restic "+Version+" from cache: "+p; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	flag := fakeRestic(t, t.TempDir(), "restic", "0.19.0")
	o.Flag = flag
	if got, want := Describe(ctx, o), "restic 0.19.0 from flag: "+flag; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestPinnedChecksumsMatchSharedData keeps the compiled-in table and the
// project's data file from drifting apart.
// The release checksums published with restic, copied into testdata:
// the table built into the program must be exactly these.
func TestPinnedChecksumsMatchReleaseData(t *testing.T) {
	tsv := filepath.Join("testdata", "restic-"+Version+"-release-sha256.tsv")
	f, err := os.Open(tsv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			t.Fatalf("%s: bad line %q", tsv, line)
		}
		want[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatalf("%s has no checksums", tsv)
	}
	if got := pinnedChecksums(); !maps.Equal(got, want) {
		t.Fatalf("pinned checksums differ from %s:\n got %v\nwant %v", tsv, got, want)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Every platform make release builds for must be able to download restic.
func TestEveryReleaseTargetHasPinnedAsset(t *testing.T) {
	sums := pinnedChecksums()
	for _, target := range []string{"linux/amd64", "linux/arm64", "windows/amd64", "darwin/amd64", "darwin/arm64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		if _, ok := sums[assetName(goos, goarch)]; !ok {
			t.Errorf("%s: no pinned checksum for %s", target, assetName(goos, goarch))
		}
	}
}

func TestWindowsNaming(t *testing.T) {
	if got, want := exeName("windows"), "restic-"+Version+".exe"; got != want {
		t.Errorf("exeName(windows) = %q, want %q", got, want)
	}
	if got, want := exeName("linux"), "restic-"+Version; got != want {
		t.Errorf("exeName(linux) = %q, want %q", got, want)
	}
	if got, want := assetName("windows", "amd64"), "restic_"+Version+"_windows_amd64.zip"; got != want {
		t.Errorf("assetName(windows) = %q, want %q", got, want)
	}
	if got, want := assetName("darwin", "arm64"), "restic_"+Version+"_darwin_arm64.bz2"; got != want {
		t.Errorf("assetName(darwin) = %q, want %q", got, want)
	}
	if runtime.GOOS == "windows" {
		if !strings.HasSuffix(ExeName(), ".exe") {
			t.Errorf("ExeName() = %q on Windows", ExeName())
		}
		// The per-user cache lives under %LocalAppData%, which roams less
		// and is where Windows expects caches.
		t.Setenv("LocalAppData", `C:\Users\p\AppData\Local`)
		d, err := DefaultCacheDir()
		if err != nil || d != `C:\Users\p\AppData\Local\instance-sync` {
			t.Errorf("DefaultCacheDir() = %q, %v", d, err)
		}
		pack := `C:\Users\p\curseforge\minecraft\Instances\My Pack`
		if got, want := filepath.Join(pack, ".cloud-sync", ExeName()), pack+`\.cloud-sync\restic-`+Version+`.exe`; got != want {
			t.Errorf("legacy path %q, want %q", got, want)
		}
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The Windows asset is a zip; its extraction runs on every OS.
func TestExtractZip(t *testing.T) {
	asset := assetName("windows", "amd64")
	data := zipOf(t, map[string]string{
		"LICENSE.txt": "license",
		"restic_" + Version + "_windows_amd64.exe": "MZ fake restic",
	})
	r, err := extract(asset, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "MZ fake restic" {
		t.Fatalf("extracted %q, %v", got, err)
	}

	if _, err := extract(asset, zipOf(t, map[string]string{"README": "x"})); err == nil || !strings.Contains(err.Error(), "no restic executable") {
		t.Errorf("zip without exe: %v", err)
	}
	if _, err := extract(asset, zipOf(t, map[string]string{"a/restic.exe": "1", "b/restic.exe": "2"})); err == nil {
		t.Error("zip with two exes accepted")
	}
	if _, err := extract(asset, []byte("not a zip")); err == nil {
		t.Error("garbage accepted as zip")
	}
}

// A release archive puts restic-<Version> beside instance-sync. Unpacking it
// must be enough: the lookup finds that copy before the cache, and never
// asks the release host for a download.
func TestBundledBesideBinaryNoDownload(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "instance-sync")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bundled := fakeRestic(t, dir, ExeName(), Version)
	cache := t.TempDir()
	host := newReleaseHost(t, serveBytes([]byte("must not be fetched")))

	f, err := Find(context.Background(), Options{Exe: exe, CacheDir: cache, Getenv: noEnv, LookPath: noPath, BaseURL: host.URL})
	if err != nil {
		t.Fatal(err)
	}
	if f.Source != "bundled" || f.Path != bundled || f.Version != Version {
		t.Fatalf("got %+v, want the bundled %s", f, bundled)
	}
	if n := host.hits.Load(); n != 0 {
		t.Errorf("release host was asked %d times", n)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("cache folder gained %v", entries)
	}

	// Control: without the bundled copy the same lookup does go to the host,
	// so the zero above is not an accident of the set-up.
	os.Remove(bundled)
	if _, err := Find(context.Background(), Options{Exe: exe, CacheDir: cache, Getenv: noEnv, LookPath: noPath, BaseURL: host.URL}); err == nil {
		t.Fatal("the host's garbage was installed")
	}
	if host.hits.Load() == 0 {
		t.Error("without a bundled restic no download was tried")
	}
}

// Package managers link the program into a folder on PATH (winget's Links,
// Homebrew's bin); the bundled restic is beside the link's target.
func TestBundledFoundThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "instance-sync")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bundled := fakeRestic(t, dir, ExeName(), Version)
	link := filepath.Join(t.TempDir(), "instance-sync")
	if err := os.Symlink(exe, link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	f, err := Find(context.Background(), Options{Exe: link, CacheDir: t.TempDir(), Getenv: noEnv, LookPath: noPath, NoDownload: true})
	if err != nil || f.Source != "bundled" || f.Path != bundled {
		t.Fatalf("through a symlink: got %+v, %v; want %s", f, err, bundled)
	}
}

// Only the pinned name counts: a plain "restic" beside the binary may be any
// version (a shared bin folder), and PATH's version check handles that one.
func TestBundledNeedsPinnedName(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "instance-sync")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fakeRestic(t, dir, "restic", "0.16.0")
	_, err := Find(context.Background(), Options{Exe: exe, CacheDir: t.TempDir(), Getenv: noEnv, LookPath: noPath, NoDownload: true})
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("plain restic beside the binary: got %v, want ErrMissing", err)
	}
}
