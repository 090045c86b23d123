//go:build !windows

package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tc-hib/winres"
	"github.com/tc-hib/winres/version"

	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/internal/wintest"
	"git.timemachine.center/timemachine/instance-sync/resticbin"
)

// need returns the path of a tool the test cannot do without: it skips
// when the tool is missing, except under CI=true, where that fails.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not installed (.ci/run installs it)", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
	return p
}

// throwawayCert makes a self-signed code-signing certificate and its
// PKCS#12 bundle, the password reaching openssl through its environment.
func throwawayCert(t *testing.T, password string) (p12, pem string) {
	t.Helper()
	openssl := need(t, "openssl")
	dir := t.TempDir()
	key, pem, p12 := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "cert.p12")
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem, "-days", "2",
			"-subj", "/CN=instance-sync test signing/O=Timemachine Network", "-addext", "extendedKeyUsage=codeSigning"},
		{"pkcs12", "-export", "-inkey", key, "-in", pem, "-out", p12, "-passout", "env:P12_PASSWORD"},
	} {
		cmd := exec.Command(openssl, args...)
		cmd.Env = append(os.Environ(), "P12_PASSWORD="+password)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", args[0], err, out)
		}
	}
	return p12, pem
}

// TestRelease builds the Linux and Windows archives as "make release" does,
// signed with a throwaway certificate, then builds them again from a copy
// of the tree elsewhere (-check) and expects the same bytes. Then it looks
// inside: the Windows programs carry a valid signature, the version
// resource and the manifest; the manifests and SHA256SUMS describe the
// archives; and the unpacked Linux archive syncs with its bundled restic,
// downloading nothing.
//
// The full check, every platform with an empty build cache, is
// "make release-check"; here the second build shares the build cache
// (compiling restic twice more would take minutes) and the copy of the tree
// still proves the bytes do not depend on where the source is.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds restic for two platforms")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 archive it builds")
	}
	need(t, "git")
	osslsigncode := need(t, "osslsigncode")
	const password = "throwaway p12 password"
	p12, certPEM := throwawayCert(t, password)

	out := filepath.Join(t.TempDir(), "dist")
	env := map[string]string{
		"VERSION":               "v1.2.3",
		"SOURCE_DATE_EPOCH":     "1764480000",
		"RELEASE_BASE_URL":      "https://example.org/dl/v1.2.3/",
		"RELEASE_SIGN_PKCS12":   p12,
		"RELEASE_SIGN_PASSWORD": password,
	}
	// The release runs as its own process, built without the race
	// detector: compressing 100 MB of programs under it takes minutes.
	tool := filepath.Join(t.TempDir(), "isync-release")
	if b, err := exec.Command("go", "build", "-o", tool, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	cmd := exec.Command(tool, "-out", out, "-platforms", "linux/amd64,windows/amd64", "-check", "-check-cache", "shared")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); env[k] == "" && !strings.HasPrefix(k, "RELEASE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("isync-release said:\n%s%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("isync-release: %v", err)
	}
	if !strings.Contains(stdout.String(), "reproducible: the second build's") {
		t.Error("no reproducibility verdict")
	}
	if strings.Contains(stdout.String(), "unsigned") {
		t.Error("says unsigned although a certificate was given")
	}
	if strings.Contains(stdout.String()+stderr.String(), password) {
		t.Error("the certificate's password was printed")
	}

	// SHA256SUMS names exactly the archives, with their digests.
	archives := []string{"cloud-svc_linux_amd64.tar.gz", "instance-sync_linux_amd64.tar.gz", "instance-sync_windows_amd64.zip"}
	var want strings.Builder
	data := map[string][]byte{}
	for _, a := range archives {
		b, err := os.ReadFile(filepath.Join(out, a))
		if err != nil {
			t.Fatal(err)
		}
		data[a] = b
		fmt.Fprintf(&want, "%x  %s\n", sha256.Sum256(b), a)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS")); string(got) != want.String() {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", got, want.String())
	}
	checkManifests(t, out, "v1.2.3", "https://example.org/dl/v1.2.3/instance-sync_windows_amd64.zip", data["instance-sync_windows_amd64.zip"])

	// Windows: both programs signed with a signature that verifies against
	// the certificate; instance-sync carries the version and manifest.
	zdir := t.TempDir()
	zr, err := zip.NewReader(bytes.NewReader(data["instance-sync_windows_amd64.zip"]), int64(len(data["instance-sync_windows_amd64.zip"])))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if err := os.WriteFile(filepath.Join(zdir, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(names, " "); got != "instance-sync.exe restic-"+resticbin.Version+".exe README.md LICENSE.txt restic-README.md restic-LICENSE.txt" {
		t.Errorf("zip holds %s", got)
	}
	for _, exe := range []string{"instance-sync.exe", "restic-" + resticbin.Version + ".exe"} {
		cmd := exec.Command(osslsigncode, "verify", "-CAfile", certPEM, "-in", filepath.Join(zdir, exe))
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "Signature verification: ok") {
			t.Errorf("osslsigncode verify %s: %v\n%s", exe, err, b)
		}
	}
	checkResources(t, filepath.Join(zdir, "instance-sync.exe"), "v1.2.3")

	// Linux: unpack as a player would and sync with nothing else around:
	// no restic on PATH, no $INSTANCE_SYNC_RESTIC, an empty cache.
	ldir := t.TempDir()
	untar(t, data["instance-sync_linux_amd64.tar.gz"], ldir)
	home := t.TempDir()
	base := []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"PATH=/usr/bin:/bin", "INSTANCE_SYNC_WATCH=0"}
	if _, err := exec.LookPath("restic"); err == nil {
		if p, _ := exec.LookPath("restic"); strings.HasPrefix(p, "/usr/bin/") || strings.HasPrefix(p, "/bin/") {
			t.Fatalf("a restic at %s would hide the bundled one", p)
		}
	}
	isync := filepath.Join(ldir, "instance-sync")
	runIsync := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(isync, args...)
		cmd.Env = base
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("instance-sync %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	v := runIsync("version")
	bundled := filepath.Join(ldir, "restic-"+resticbin.Version)
	if !strings.Contains(v, "instance-sync v1.2.3\n") || !strings.Contains(v, "restic: "+resticbin.Version+" from bundled: "+bundled+"\n") {
		t.Errorf("instance-sync version:\n%s", v)
	}

	srv, err := testserver.Start(t.TempDir(), "", map[string]string{"alice": "alice-secret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pack := t.TempDir()
	if err := os.MkdirAll(filepath.Join(pack, "saves", "World"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pack, "saves", "World", "level.dat"), []byte("level"), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("alice:alice-secret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runIsync("init", "--url="+srv.URL, "--token-file="+tokenFile, "--pack-folder="+pack)
	runIsync("push", "--no-gui", "--pack-folder="+pack)
	snaps, _ := filepath.Glob(filepath.Join(srv.DataDir, "alice", "*", "snapshots", "*"))
	if len(snaps) == 0 {
		t.Error("the push made no snapshot")
	}
	// Nothing was downloaded: no restic in the per-user cache.
	if m, _ := filepath.Glob(filepath.Join(home, ".cache", "instance-sync", "restic*")); len(m) > 0 {
		t.Errorf("restic was downloaded although the archive bundles it: %v", m)
	}

	// The same for the Windows archive, under Wine: the unpacked zip syncs
	// with the restic-0.18.1.exe beside instance-sync.exe.
	wine := wintest.Require(t)
	wpack := t.TempDir()
	if err := os.MkdirAll(filepath.Join(wpack, "saves", "World"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wpack, "saves", "World", "level.dat"), []byte("level"), 0o644); err != nil {
		t.Fatal(err)
	}
	appData, localAppData := t.TempDir(), t.TempDir()
	var wbase []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSTANCE_SYNC_") {
			wbase = append(wbase, kv)
		}
	}
	wbase = append(wbase, "APPDATA="+wine.WinPath(appData), "LOCALAPPDATA="+wine.WinPath(localAppData), "INSTANCE_SYNC_WATCH=0")
	runWin := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		b, err := wine.Command(ctx, wbase, filepath.Join(zdir, "instance-sync.exe"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("wine instance-sync.exe %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	wv := runWin("version")
	wantRestic := "restic: " + resticbin.Version + " from bundled: " + wine.WinPath(filepath.Join(zdir, "restic-"+resticbin.Version+".exe"))
	if !strings.Contains(wv, "instance-sync v1.2.3") || !strings.Contains(wv, wantRestic) {
		t.Errorf("wine instance-sync.exe version:\n%s\nwant a line %q", wv, wantRestic)
	}
	runWin("init", "--url="+srv.URL, "--token-file="+wine.WinPath(tokenFile), "--pack-folder="+wine.WinPath(wpack))
	runWin("push", "--no-gui", "--pack-folder="+wine.WinPath(wpack))
	if after, _ := filepath.Glob(filepath.Join(srv.DataDir, "alice", "*", "snapshots", "*")); len(after) <= len(snaps) {
		t.Error("the push under Wine made no snapshot")
	}
	if m, _ := filepath.Glob(filepath.Join(localAppData, "instance-sync", "restic*")); len(m) > 0 {
		t.Errorf("restic.exe was downloaded although the archive bundles it: %v", m)
	}
}

// checkResources reads the version resource and the manifest back from a
// built Windows executable.
func checkResources(t *testing.T, exe, ver string) {
	t.Helper()
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := winres.LoadFromEXE(f)
	if err != nil {
		t.Fatalf("%s has no resources: %v", exe, err)
	}
	raw := rs.Get(winres.RT_VERSION, winres.ID(1), winres.LCIDDefault)
	vi, err := version.FromBytes(raw)
	if err != nil {
		t.Fatalf("version resource: %v", err)
	}
	js, err := vi.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct{ Info map[string]map[string]string }
	if err := json.Unmarshal(js, &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Info) != 1 {
		t.Errorf("version resource has %d translations, want one (en-US): %s", len(parsed.Info), js)
	}
	table := parsed.Info["0409"]
	for k, want := range map[string]string{
		version.ProductName:      "instance-sync",
		version.FileVersion:      ver,
		version.ProductVersion:   ver,
		version.OriginalFilename: "instance-sync.exe",
		version.InternalName:     "instance-sync",
		version.CompanyName:      company,
		version.FileDescription:  descriptions["instance-sync"],
	} {
		if table[k] != want {
			t.Errorf("version resource %s = %q, want %q", k, table[k], want)
		}
	}
	if vi.FileVersion != [4]uint16{1, 2, 3, 0} {
		t.Errorf("fixed file version %v", vi.FileVersion)
	}
	m := string(rs.Get(winres.RT_MANIFEST, winres.ID(1), winres.LCIDDefault))
	for _, want := range []string{`level="asInvoker"`, `<longPathAware xmlns="http://schemas.microsoft.com/SMI/2016/WindowsSettings">true</longPathAware>`, `<activeCodePage xmlns="http://schemas.microsoft.com/SMI/2019/WindowsSettings">UTF-8</activeCodePage>`} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %s:\n%s", want, m)
		}
	}
	if _, err := winres.AppManifestFromXML([]byte(m)); err != nil {
		t.Errorf("manifest does not parse: %v", err)
	}
}

func untar(t *testing.T, data []byte, dir string) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(filepath.Join(dir, h.Name), b, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}

// The -check build says nothing twice: one note that the binaries are
// unsigned, whichever build says it.
func TestUnsignedSaidOnce(t *testing.T) {
	need(t, "git")
	cfg, err := configure(context.Background(), func(string) string { return "" }, filepath.Join(t.TempDir(), "dist"), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.targets = nil // the notes only; building is TestRelease's
	var log bytes.Buffer
	cfg.log = &log
	if err := release(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := checkReproducible(context.Background(), cfg, false); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "unsigned"); n != 1 {
		t.Errorf("said unsigned %d times:\n%s", n, log.String())
	}
}
