// Package resticbin finds the restic executable instance-sync drives: the
// pinned release, from a flag, the environment, beside the program (release
// archives bundle it), the per-user cache, a copy left by older installs, or
// PATH when that one is new enough. When none of
// those exists it downloads the official release asset, checks it against a
// SHA-256 compiled into this package, and installs it into the cache, so a
// player never has to install restic by hand.
package resticbin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Version is the restic release instance-sync is built and tested against.
// Bumping it means bumping the checksums in pinnedChecksums too.
const Version = "0.18.1"

// pinnedChecksums maps each official restic Version release asset to the
// SHA-256 of the compressed asset. It is the only copy in the program; a test
// compares it with testdata/restic-0.18.1-release-sha256.tsv (restic's published checksums). A function,
// not a package variable, so nothing can modify the table at run time.
func pinnedChecksums() map[string]string {
	return map[string]string{
		"restic_0.18.1_linux_amd64.bz2":   "680838f19d67151adba227e1570cdd8af12c19cf1735783ed1ba928bc41f363d",
		"restic_0.18.1_linux_arm64.bz2":   "87f53fddde38764095e9c058a3b31834052c37e5826d2acf34e18923c006bd45",
		"restic_0.18.1_darwin_amd64.bz2":  "eb8543ed92ff1ddb67762daebf09f7bea4b0c37d21edb6a910bee3d4f514015f",
		"restic_0.18.1_darwin_arm64.bz2":  "193fccc8bb4567b498923bc70261e104ff22be88016f0f108b035dad372ab711",
		"restic_0.18.1_windows_amd64.zip": "0c1a713440578cb400d2e76208feb24f1b339426b075a21f73b6b2132692515d",
	}
}

// DefaultBaseURL is where the official release assets live.
const DefaultBaseURL = "https://github.com/restic/restic/releases/download/v" + Version

// DefaultTimeout bounds one download (and the wait for another process's
// download). Generous because the asset is about 9 MB and players may be on
// slow links, but finite so a stalled server ends in an error, not a hang.
const DefaultTimeout = 10 * time.Minute

// ErrMissing means no usable restic was found and none could be obtained.
// The CLI maps it to exit code 6.
var ErrMissing = errors.New("restic not found")

// Options says where to look.
type Options struct {
	Flag       string              // --restic-binary
	PackFolder string              // instance folder, for .cloud-sync/restic-<Version>
	NoDownload bool                // --no-download
	CacheDir   string              // default: <UserCacheDir>/instance-sync
	Getenv     func(string) string // default: os.Getenv
	// Exe is the running program; a restic-<Version> in its folder (or in
	// the folder of the file it links to) is the one release archives
	// bundle. Default: os.Executable().
	Exe      string
	LookPath func(string) (string, error)

	// Download settings, used only when nothing usable was found.
	BaseURL    string            // default: DefaultBaseURL
	HTTPClient *http.Client      // default: http.DefaultClient
	Timeout    time.Duration     // default: DefaultTimeout
	Checksums  map[string]string // asset name -> SHA-256 hex; default: the pinned table
	// Progress, when set, is called as the asset arrives; total is -1 when the
	// server does not say how big the asset is.
	Progress func(done, total int64)
}

// Found is the restic that will be used and where it came from.
type Found struct {
	Path    string
	Source  string // flag, env, bundled, cache, legacy, path, download
	Version string
}

// ExeName is the file name of the pinned restic in a cache folder.
func ExeName() string {
	return exeName(runtime.GOOS)
}

func exeName(goos string) string {
	name := "restic-" + Version
	if goos == "windows" {
		name += ".exe"
	}
	return name
}

// DefaultCacheDir is <UserCacheDir>/instance-sync.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "instance-sync"), nil
}

// Find returns the restic to use, following the documented lookup order.
func Find(ctx context.Context, o Options) (Found, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	lookPath := o.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if o.Flag != "" {
		return explicit(o.Flag, "flag", "--restic-binary")
	}
	if p := getenv("INSTANCE_SYNC_RESTIC"); p != "" {
		return explicit(p, "env", "$INSTANCE_SYNC_RESTIC")
	}
	if p := bundled(o.Exe); p != "" {
		return Found{Path: p, Source: "bundled", Version: Version}, nil
	}
	cacheDir := o.CacheDir
	if cacheDir == "" {
		cacheDir, _ = DefaultCacheDir()
	}
	if cacheDir != "" {
		if p := filepath.Join(cacheDir, ExeName()); isFile(p) {
			return Found{Path: p, Source: "cache", Version: Version}, nil
		}
	}
	if o.PackFolder != "" {
		if p := filepath.Join(o.PackFolder, ".cloud-sync", ExeName()); isFile(p) {
			return Found{Path: p, Source: "legacy", Version: Version}, nil
		}
	}
	if p, err := lookPath("restic"); err == nil {
		if v, err := ProbeVersion(ctx, p); err == nil && AtLeast(v, Version) {
			return Found{Path: p, Source: "path", Version: v}, nil
		}
	}
	if cacheDir == "" {
		return Found{}, fmt.Errorf("%w: no restic %s or newer and no per-user cache folder to download it into; pass --restic-binary=PATH or set $INSTANCE_SYNC_RESTIC=PATH", ErrMissing, Version)
	}
	where := filepath.Join(cacheDir, ExeName())
	if o.NoDownload {
		return Found{}, fmt.Errorf("%w: no restic %s or newer and downloading is off; pass --restic-binary=PATH, set $INSTANCE_SYNC_RESTIC=PATH, or put restic %s at %s", ErrMissing, Version, Version, where)
	}
	f, err := install(ctx, o, cacheDir)
	if err != nil {
		return Found{}, fmt.Errorf("%w: %w; pass --restic-binary=PATH, set $INSTANCE_SYNC_RESTIC=PATH, or put restic %s at %s", ErrMissing, err, Version, where)
	}
	return f, nil
}

// Describe says which restic Find would use, for "instance-sync version".
// It never downloads: printing a version must not fetch 9 MB.
func Describe(ctx context.Context, o Options) string {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	// Only a missing pinned copy would be fixed by a download; a wrong
	// --restic-binary or $INSTANCE_SYNC_RESTIC is reported as it is.
	explicitPath := o.Flag != "" || getenv("INSTANCE_SYNC_RESTIC") != ""
	wouldDownload := !o.NoDownload && !explicitPath
	o.NoDownload = true
	f, err := Find(ctx, o)
	if err != nil {
		dir := o.CacheDir
		if dir == "" {
			dir, _ = DefaultCacheDir()
		}
		if wouldDownload && dir != "" {
			return fmt.Sprintf("restic %s not installed yet; it will be downloaded to %s on first use", Version, filepath.Join(dir, ExeName()))
		}
		return err.Error()
	}
	v := f.Version
	if v == "" {
		if pv, err := ProbeVersion(ctx, f.Path); err == nil {
			v = pv
		} else {
			v = "(version unknown)"
		}
	}
	return fmt.Sprintf("restic %s from %s: %s", v, f.Source, f.Path)
}

// bundled returns the restic-<Version> beside exe, or beside the file exe
// links to, or "". Only the pinned name counts: the name is the version, so
// no "restic version" run is needed, and a plain "restic" in a shared bin
// folder (of any version) is left to the PATH rule and its version check.
func bundled(exe string) string {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return ""
		}
	}
	dirs := []string{filepath.Dir(exe)}
	// A package manager's link (winget's Links folder, a bin folder on PATH)
	// may be what started the program; the archive's files are beside the
	// link's target.
	if real, err := filepath.EvalSymlinks(exe); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, ExeName()); isFile(p) {
			return p
		}
	}
	return ""
}

func explicit(p, source, what string) (Found, error) {
	if !isFile(p) {
		return Found{}, fmt.Errorf("%w: %s %s does not exist; point it at a restic %s executable", ErrMissing, what, p, Version)
	}
	return Found{Path: p, Source: source}, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

var versionRE = regexp.MustCompile(`restic (\d+\.\d+\.\d+)`)

// ProbeVersion runs "restic version" and returns the version it prints.
func ProbeVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "version")
	cmd.Env = []string{}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", path, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s version: unrecognised output", path)
	}
	return string(m[1]), nil
}

// AtLeast reports whether version v >= min (both "X.Y.Z").
func AtLeast(v, min string) bool {
	a, b := parse(v), parse(min)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

func parse(v string) [3]int {
	var out [3]int
	for i, p := range strings.SplitN(v, ".", 3) {
		n, _ := strconv.Atoi(p)
		out[i] = n
	}
	return out
}
