package resticbin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAsset is a bzip2-compressed fake restic and its SHA-256. Go has no
// bzip2 writer, so the bzip2 tool makes it.
func fakeAsset(t *testing.T, version string) (data []byte, sum string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("fake restic is a shell script; the zip path is covered by TestExtractZip")
	}
	bz, err := exec.LookPath("bzip2")
	if err != nil {
		skipOrFail(t, "bzip2 is not installed")
	}
	script := fakeRestic(t, t.TempDir(), "restic", version)
	raw, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bz, "-c")
	cmd.Stdin = bytes.NewReader(raw)
	data, err = cmd.Output()
	if err != nil {
		t.Fatalf("bzip2: %v", err)
	}
	s := sha256.Sum256(data)
	return data, hex.EncodeToString(s[:])
}

// releaseHost stands in for the GitHub release host.
type releaseHost struct {
	*httptest.Server
	hits atomic.Int32
}

func newReleaseHost(t *testing.T, serve func(w http.ResponseWriter, r *http.Request)) *releaseHost {
	t.Helper()
	h := &releaseHost{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		if r.URL.Path != "/"+assetName(runtime.GOOS, runtime.GOARCH) {
			http.NotFound(w, r)
			return
		}
		serve(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func serveBytes(data []byte) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
	}
}

// downloadOptions isolates a test from the developer's environment and
// points the download at host, trusting sum for this platform's asset.
func downloadOptions(cache, baseURL, sum string) Options {
	return Options{
		CacheDir:  cache,
		Getenv:    noEnv,
		LookPath:  noPath,
		BaseURL:   baseURL,
		Checksums: map[string]string{assetName(runtime.GOOS, runtime.GOARCH): sum},
		Timeout:   20 * time.Second,
	}
}

// assertNothingExecutable fails if a refused download left anything that
// could be run, or anything at the name Find trusts.
func assertNothingExecutable(t *testing.T, cache string) {
	t.Helper()
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == ExeName() || fi.Mode()&0o111 != 0 || strings.HasSuffix(e.Name(), partialSuffix) {
			t.Errorf("left behind in cache: %s (%v)", e.Name(), fi.Mode())
		}
	}
}

func TestDownloadInstallsVerifiedRestic(t *testing.T) {
	data, sum := fakeAsset(t, Version)
	host := newReleaseHost(t, serveBytes(data))
	cache := filepath.Join(t.TempDir(), "not-yet-created")
	o := downloadOptions(cache, host.URL, sum)
	var lastDone, lastTotal atomic.Int64
	o.Progress = func(done, total int64) {
		lastDone.Store(done)
		lastTotal.Store(total)
	}
	// A temp file from a download killed half way must not pile up.
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(cache, partialPrefix()+"123"+partialSuffix)
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}

	f, err := Find(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cache, ExeName())
	if f.Source != "download" || f.Path != want || f.Version != Version {
		t.Fatalf("got %+v, want download at %s", f, want)
	}
	fi, err := os.Stat(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	v, err := ProbeVersion(context.Background(), f.Path)
	if err != nil || v != Version {
		t.Fatalf("installed restic says %q, %v", v, err)
	}
	if lastDone.Load() != int64(len(data)) || lastTotal.Load() != int64(len(data)) {
		t.Errorf("progress ended at %d/%d, want %d/%d", lastDone.Load(), lastTotal.Load(), len(data), len(data))
	}
	if exists(stale) {
		t.Error("stale partial file was not removed")
	}

	// The next run finds it in the cache without asking the server.
	before := host.hits.Load()
	f, err = Find(context.Background(), o)
	if err != nil || f.Source != "cache" {
		t.Fatalf("second Find: %+v, %v", f, err)
	}
	if host.hits.Load() != before {
		t.Error("second Find downloaded again")
	}
}

func TestDownloadRefusesTamperedAsset(t *testing.T) {
	data, sum := fakeAsset(t, Version)
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0xff
	other, _ := fakeAsset(t, "6.6.6") // valid bzip2, wrong content
	for name, served := range map[string][]byte{"flipped byte": flipped, "other program": other} {
		t.Run(name, func(t *testing.T) {
			host := newReleaseHost(t, serveBytes(served))
			cache := t.TempDir()
			_, err := Find(context.Background(), downloadOptions(cache, host.URL, sum))
			if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "SHA-256") {
				t.Fatalf("got %v, want a checksum error wrapping ErrMissing", err)
			}
			assertNothingExecutable(t, cache)
		})
	}
}

func TestDownloadTruncated(t *testing.T) {
	data, sum := fakeAsset(t, Version)
	host := newReleaseHost(t, func(w http.ResponseWriter, r *http.Request) {
		// Promise the whole asset, send half, hang up.
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:len(data)/2])
	})
	cache := t.TempDir()
	_, err := Find(context.Background(), downloadOptions(cache, host.URL, sum))
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got %v, want a truncation error wrapping ErrMissing", err)
	}
	assertNothingExecutable(t, cache)
}

func TestDownloadNotFound(t *testing.T) {
	_, sum := fakeAsset(t, Version)
	host := newReleaseHost(t, func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	})
	cache := t.TempDir()
	_, err := Find(context.Background(), downloadOptions(cache, host.URL, sum))
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("got %v, want a 404 error wrapping ErrMissing", err)
	}
	for _, want := range []string{"--restic-binary", "$INSTANCE_SYNC_RESTIC", filepath.Join(cache, ExeName())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	assertNothingExecutable(t, cache)
}

func TestDownloadSlowServerTimesOut(t *testing.T) {
	data, sum := fakeAsset(t, Version)
	for name, stall := range map[string]bool{"no headers": false, "stalls mid body": true} {
		t.Run(name, func(t *testing.T) {
			host := newReleaseHost(t, func(w http.ResponseWriter, r *http.Request) {
				if stall {
					w.Header().Set("Content-Length", strconv.Itoa(len(data)))
					w.Write(data[:10])
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done()
			})
			cache := t.TempDir()
			o := downloadOptions(cache, host.URL, sum)
			o.Timeout = 200 * time.Millisecond
			// The outer deadline turns a missing timeout into a failure
			// instead of a hung test run: Find then says "context
			// deadline exceeded", not "timed out after 200ms".
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := Find(ctx, o)
			if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "timed out after 200ms") {
				t.Fatalf("got %v, want a timeout error wrapping ErrMissing", err)
			}
			assertNothingExecutable(t, cache)
		})
	}
}

// gatedHost serves the asset only after gate closes, and then slowly, so
// every contender is inside Find while the first download is in flight.
func gatedHost(t *testing.T, data []byte, gate <-chan struct{}) *releaseHost {
	return newReleaseHost(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		time.Sleep(300 * time.Millisecond)
		serveBytes(data)(w, r)
	})
}

func TestConcurrentFindsDownloadOnce(t *testing.T) {
	data, sum := fakeAsset(t, Version)
	gate := make(chan struct{})
	host := gatedHost(t, data, gate)
	cache := t.TempDir()
	o := downloadOptions(cache, host.URL, sum)

	const n = 4
	var wg sync.WaitGroup
	results := make([]Found, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Find(context.Background(), o)
		}()
	}
	close(gate)
	wg.Wait()
	sources := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Find %d: %v", i, errs[i])
		}
		sources[results[i].Source]++
	}
	if got := host.hits.Load(); got != 1 {
		t.Errorf("server hit %d times, want 1", got)
	}
	if sources["download"] != 1 {
		t.Errorf("sources %v, want exactly one download", sources)
	}
}

// TestHelperProcessFind is the second process of TestTwoProcessesDownloadOnce.
func TestHelperProcessFind(t *testing.T) {
	if os.Getenv("RESTICBIN_HELPER") != "1" {
		t.Skip("run by TestTwoProcessesDownloadOnce")
	}
	o := downloadOptions(os.Getenv("RESTICBIN_CACHE"), os.Getenv("RESTICBIN_URL"), os.Getenv("RESTICBIN_SUM"))
	fmt.Println("ready")
	f, err := Find(context.Background(), o)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("source:", f.Source)
}

func TestTwoProcessesDownloadOnce(t *testing.T) {
	data, sum := fakeAsset(t, Version)
	gate := make(chan struct{})
	host := gatedHost(t, data, gate)
	cache := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessFind$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RESTICBIN_HELPER=1", "RESTICBIN_CACHE="+cache, "RESTICBIN_URL="+host.URL, "RESTICBIN_SUM="+sum)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Close the gate even on early failure so the helper is not left hanging.
	var closeGate sync.Once
	defer closeGate.Do(func() { close(gate) })

	lines := bufio.NewScanner(stdout)
	var helperSource string
	helperDone := make(chan struct{})
	sawReady := make(chan struct{})
	go func() {
		defer close(helperDone)
		for lines.Scan() {
			line := lines.Text()
			switch {
			case line == "ready":
				close(sawReady)
			case strings.HasPrefix(line, "source: "), strings.HasPrefix(line, "error: "):
				helperSource = line
			}
		}
	}()
	select {
	case <-sawReady:
	case <-helperDone:
		t.Fatal("helper process ended before calling Find")
	case <-time.After(30 * time.Second):
		t.Fatal("helper process did not start")
	}

	var mine Found
	var mineErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		mine, mineErr = Find(context.Background(), downloadOptions(cache, host.URL, sum))
	}()
	closeGate.Do(func() { close(gate) })
	<-done
	<-helperDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}

	if mineErr != nil {
		t.Fatalf("this process: %v", mineErr)
	}
	if !strings.HasPrefix(helperSource, "source: ") {
		t.Fatalf("helper process: %q", helperSource)
	}
	sources := []string{mine.Source, strings.TrimPrefix(helperSource, "source: ")}
	if got := host.hits.Load(); got != 1 {
		t.Errorf("server hit %d times, want 1 (sources %v)", got, sources)
	}
	if (sources[0] == "download") == (sources[1] == "download") {
		t.Errorf("sources %v, want exactly one download", sources)
	}
	if v, err := ProbeVersion(context.Background(), filepath.Join(cache, ExeName())); err != nil || v != Version {
		t.Errorf("installed restic says %q, %v", v, err)
	}
}

func TestOlderResticOnPathTriggersDownload(t *testing.T) {
	data, sum := fakeAsset(t, Version)
	host := newReleaseHost(t, serveBytes(data))
	old := fakeRestic(t, t.TempDir(), "restic", "0.17.3")
	o := downloadOptions(t.TempDir(), host.URL, sum)
	o.LookPath = pathTo(old)
	f, err := Find(context.Background(), o)
	if err != nil || f.Source != "download" {
		t.Fatalf("got %+v, %v; want a download instead of restic 0.17.3", f, err)
	}
}

func TestLockWaitTimesOut(t *testing.T) {
	sum := strings.Repeat("0", 64)
	cache := t.TempDir()
	release, err := acquire(context.Background(), filepath.Join(cache, "restic-"+Version+".lock"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	o := downloadOptions(cache, "http://127.0.0.1:1", sum)
	o.Timeout = 150 * time.Millisecond
	_, err = Find(context.Background(), o)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "another instance-sync") {
		t.Fatalf("got %v, want a lock wait error wrapping ErrMissing", err)
	}
}

func TestNoPinnedAssetForPlatform(t *testing.T) {
	sum := strings.Repeat("0", 64)
	o := downloadOptions(t.TempDir(), "http://127.0.0.1:1", sum)
	o.Checksums = map[string]string{"restic_" + Version + "_plan9_mips.bz2": sum}
	_, err := Find(context.Background(), o)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "no official restic") {
		t.Fatalf("got %v", err)
	}
}
