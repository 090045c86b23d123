package resticbin

import (
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/filelock"
)

// Limits that keep a hostile or broken server from filling memory or disk.
// The real assets are about 9 MB compressed and 27 MB decompressed.
const (
	maxAssetBytes = 64 << 20
	maxExeBytes   = 256 << 20
)

// assetName is the official release file for an OS and architecture.
func assetName(goos, goarch string) string {
	ext := ".bz2"
	if goos == "windows" {
		ext = ".zip"
	}
	return "restic_" + Version + "_" + goos + "_" + goarch + ext
}

// partialPrefix and partialSuffix name the temp file the executable is
// decompressed into; a later download removes leftovers of a killed one.
const partialSuffix = ".partial"

func partialPrefix() string { return ".restic-" + Version + "-" }

// install downloads, verifies and installs the pinned restic into cacheDir.
// It holds a lock file in cacheDir throughout, so concurrent instance-sync
// processes download once: the others wait and then find the file.
func install(ctx context.Context, o Options, cacheDir string) (Found, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	final := filepath.Join(cacheDir, ExeName())
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Found{}, fmt.Errorf("create cache folder: %w", err)
	}

	lockPath := filepath.Join(cacheDir, "restic-"+Version+".lock")
	release, err := acquire(ctx, lockPath, timeout)
	if err != nil {
		return Found{}, err
	}
	defer release()

	// Another process may have finished the download while we waited.
	if isFile(final) {
		return Found{Path: final, Source: "cache", Version: Version}, nil
	}
	removePartials(cacheDir)

	asset := assetName(runtime.GOOS, runtime.GOARCH)
	sums := o.Checksums
	if sums == nil {
		sums = pinnedChecksums()
	}
	want, ok := sums[asset]
	if !ok {
		return Found{}, fmt.Errorf("no official restic %s download is pinned for %s/%s", Version, runtime.GOOS, runtime.GOARCH)
	}

	data, err := fetch(ctx, o, asset, timeout)
	if err != nil {
		return Found{}, err
	}
	// The checksum is checked before a single byte is decompressed, so a
	// tampered asset never reaches the disk as an executable.
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, want) {
		return Found{}, fmt.Errorf("downloaded %s has SHA-256 %s, want %s: the download is corrupt or was tampered with", asset, got, want)
	}
	exe, err := extract(asset, data)
	if err != nil {
		return Found{}, err
	}
	if err := writeExe(cacheDir, final, exe); err != nil {
		return Found{}, err
	}
	return Found{Path: final, Source: "download", Version: Version}, nil
}

// fetch reads the whole asset into memory: small enough, and it means no
// unverified bytes are ever written to disk.
func fetch(ctx context.Context, o Options, asset string, timeout time.Duration) ([]byte, error) {
	base := o.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	client := o.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	url := strings.TrimRight(base, "/") + "/" + asset

	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("download restic from %s: %w", url, err)
	}
	// A failure is described by why it failed; the deadline gets its own
	// wording because "context deadline exceeded" tells a player nothing.
	explain := func(err error) error {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("download restic from %s: timed out after %s; check the network connection", url, timeout)
		}
		return fmt.Errorf("download restic from %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, explain(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download restic from %s: server answered %s", url, resp.Status)
	}
	if resp.ContentLength > maxAssetBytes {
		return nil, fmt.Errorf("download restic from %s: asset is %d bytes, more than the %d allowed", url, resp.ContentLength, maxAssetBytes)
	}

	var buf bytes.Buffer
	w := io.Writer(&buf)
	if o.Progress != nil {
		w = &progressWriter{w: &buf, total: resp.ContentLength, report: o.Progress}
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, maxAssetBytes+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("download restic from %s: truncated after %d of %d bytes", url, n, resp.ContentLength)
		}
		return nil, explain(err)
	}
	if n > maxAssetBytes {
		return nil, fmt.Errorf("download restic from %s: asset is more than the %d bytes allowed", url, maxAssetBytes)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, fmt.Errorf("download restic from %s: truncated after %d of %d bytes", url, n, resp.ContentLength)
	}
	return buf.Bytes(), nil
}

type progressWriter struct {
	w      io.Writer
	done   int64
	total  int64
	report func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.report(p.done, p.total)
	return n, err
}

// extract returns a reader of the restic executable inside a verified asset.
func extract(asset string, data []byte) (io.Reader, error) {
	switch {
	case strings.HasSuffix(asset, ".bz2"):
		return bzip2.NewReader(bytes.NewReader(data)), nil
	case strings.HasSuffix(asset, ".zip"):
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", asset, err)
		}
		// The official zip holds restic_<version>_windows_<arch>.exe; only
		// the file name is used, never the entry's path, to pick it.
		var exe *zip.File
		for _, f := range zr.File {
			base := path.Base(f.Name)
			if strings.HasPrefix(base, "restic") && strings.HasSuffix(strings.ToLower(base), ".exe") {
				if exe != nil {
					return nil, fmt.Errorf("open %s: more than one restic executable inside", asset)
				}
				exe = f
			}
		}
		if exe == nil {
			return nil, fmt.Errorf("open %s: no restic executable inside", asset)
		}
		rc, err := exe.Open()
		if err != nil {
			return nil, fmt.Errorf("open %s in %s: %w", exe.Name, asset, err)
		}
		// Left unclosed on purpose: the entry reads from memory and holds
		// nothing the garbage collector cannot reclaim.
		return rc, nil
	default:
		return nil, fmt.Errorf("unknown archive type for %s", asset)
	}
}

// writeExe writes the executable to a temp name beside final, syncs it, and
// renames it into place, so a crash leaves either nothing or a whole file
// under the name Find looks for.
func writeExe(dir, final string, src io.Reader) (err error) {
	tmp, err := os.CreateTemp(dir, partialPrefix()+"*"+partialSuffix)
	if err != nil {
		return fmt.Errorf("write restic into %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, io.LimitReader(src, maxExeBytes+1))
	if err != nil {
		return fmt.Errorf("decompress restic: %w", err)
	}
	if n > maxExeBytes {
		return fmt.Errorf("decompress restic: more than the %d bytes allowed", maxExeBytes)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = os.Chmod(tmp.Name(), 0o755); err != nil {
		return fmt.Errorf("make %s executable: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("install restic as %s: %w", final, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. Best effort: Windows cannot open a
// folder for syncing, and a lost rename only means downloading again.
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// removePartials deletes temp files a killed download left behind. Only
// called while holding the lock, so none of them belongs to a live download.
func removePartials(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, partialPrefix()) && strings.HasSuffix(n, partialSuffix) {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// acquire takes the cross-process download lock, polling so that waiting
// honours ctx and the timeout (a blocking flock could not be interrupted).
func acquire(ctx context.Context, lockPath string, timeout time.Duration) (func(), error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", lockPath, err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	delay := 10 * time.Millisecond
	for {
		ok, err := filelock.TryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		if ok {
			// The lock file itself stays: removing it would let a third
			// process lock a fresh file while a second still holds the old.
			return func() {
				_ = filelock.Unlock(f)
				f.Close()
			}, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", lockPath, ctx.Err())
		case <-deadline.C:
			f.Close()
			// The OS drops the lock when its holder dies, so reaching this
			// means a live process is still downloading.
			return nil, fmt.Errorf("another instance-sync has been downloading restic for over %s (lock %s); try again when it finishes", timeout, lockPath)
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}
