// Command isync-release builds the release into dist/: for each platform an
// archive holding instance-sync (or cloud-svc) and the pinned restic built
// from tools/go.mod, README and LICENSE files for both; a Windows version
// resource and manifest; Authenticode signatures when a certificate is
// given; SHA256SUMS; and Scoop and winget manifests. Two runs from the same
// commit give byte-identical archives, and -check proves it.
//
//	go run ./cmd/isync-release                       # what "make release" runs
//	go run ./cmd/isync-release -check                # build twice, compare
//	go run ./cmd/isync-release -platforms=windows/amd64 -out=/tmp/dist
//
// Environment: VERSION (default: git describe), SOURCE_DATE_EPOCH (default:
// the commit's time), RELEASE_BASE_URL (where the archives will be
// downloaded from, for the manifests), RELEASE_SIGN_PKCS12 and
// RELEASE_SIGN_PASSWORD (the code-signing certificate and its password),
// RELEASE_SIGN_TIMESTAMP_URL (an RFC 3161 time-stamping server).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("isync-release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "dist", "folder the release is written to (emptied first)")
	platforms := fs.String("platforms", "", "comma-separated os/arch pairs to build (default: all)")
	check := fs.Bool("check", false, "build twice, the second time from a copy of the tree at another path, and compare every file")
	checkCache := fs.String("check-cache", "fresh", "the second build's Go build cache with -check: fresh (an empty one: every package compiled again) or shared (the usual one: faster, for CI)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "isync-release: unexpected argument %q; see isync-release -h\n", fs.Arg(0))
		return 2
	}
	if *checkCache != "fresh" && *checkCache != "shared" {
		fmt.Fprintf(stderr, "isync-release: -check-cache=%s: use fresh or shared\n", *checkCache)
		return 2
	}
	cfg, err := configure(ctx, getenv, *out, *platforms)
	if err != nil {
		fmt.Fprintf(stderr, "isync-release: %v\n", err)
		return 2
	}
	cfg.log = stdout
	if err := release(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "isync-release: %v\n", err)
		return 1
	}
	if !*check {
		return 0
	}
	if err := checkReproducible(ctx, cfg, *checkCache == "fresh"); err != nil {
		fmt.Fprintf(stderr, "isync-release: %v\n", err)
		return 1
	}
	return 0
}

// config is one release build.
type config struct {
	root     string    // repository root (holds go.mod and tools/)
	out      string    // output folder
	version  string    // stamped into the binaries, as "instance-sync version" prints it
	epoch    time.Time // every timestamp in the archives
	targets  []target
	baseURL  string // the manifests' download URLs are baseURL/<archive>
	sign     *signer
	gocache  string // GOCACHE for the go commands; "" inherits
	log      io.Writer
	warnings []string
	second   bool // the -check build: the notes were said already
}

// target is one archive: a command for one platform.
type target struct {
	cmd, goos, goarch string
}

func (t target) platform() string { return t.goos + "/" + t.goarch }

func (t target) exe(name string) string {
	if t.goos == "windows" {
		return name + ".exe"
	}
	return name
}

func (t target) archive() string {
	ext := ".tar.gz"
	if t.goos == "windows" {
		ext = ".zip"
	}
	return t.cmd + "_" + t.goos + "_" + t.goarch + ext
}

// allTargets are the shipped archives. cloud-svc runs on Linux servers.
var allTargets = []target{
	{"instance-sync", "linux", "amd64"},
	{"instance-sync", "linux", "arm64"},
	{"instance-sync", "windows", "amd64"},
	{"instance-sync", "darwin", "amd64"},
	{"instance-sync", "darwin", "arm64"},
	{"cloud-svc", "linux", "amd64"},
	{"cloud-svc", "linux", "arm64"},
}

func configure(ctx context.Context, getenv func(string) string, out, platforms string) (*config, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	cfg := &config{root: root, out: out}
	if !filepath.IsAbs(cfg.out) {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		cfg.out = filepath.Join(wd, cfg.out)
	}
	if err := safeToEmpty(cfg.out, root); err != nil {
		return nil, err
	}

	cfg.targets, err = selectTargets(platforms)
	if err != nil {
		return nil, err
	}

	cfg.version = getenv("VERSION")
	if cfg.version == "" {
		v, err := gitOutput(ctx, root, "describe", "--tags", "--always", "--dirty")
		if err != nil {
			v = "dev"
		}
		cfg.version = v
	}
	if strings.ContainsAny(cfg.version, " \t\n\"'\\") {
		return nil, fmt.Errorf("VERSION=%q holds spaces, quotes or backslashes; use a plain tag such as v1.2.3", cfg.version)
	}

	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a count of seconds since 1970; unset it to use the commit's time", s)
		}
		cfg.epoch = time.Unix(n, 0).UTC()
	} else if s, err := gitOutput(ctx, root, "log", "-1", "--format=%ct"); err == nil {
		n, _ := strconv.ParseInt(s, 10, 64)
		cfg.epoch = time.Unix(n, 0).UTC()
	} else {
		// Outside git: a fixed date, so builds still agree with each other.
		cfg.epoch = zipEpoch
		cfg.warnings = append(cfg.warnings, "not in a git checkout and SOURCE_DATE_EPOCH is unset; archive times are 1980-01-01")
	}
	// Zip cannot store times before 1980.
	if cfg.epoch.Before(zipEpoch) {
		cfg.epoch = zipEpoch
	}

	cfg.baseURL = strings.TrimRight(getenv("RELEASE_BASE_URL"), "/")
	if cfg.baseURL == "" {
		cfg.baseURL = defaultBaseURL + "/" + cfg.version
	}
	if !strings.HasPrefix(cfg.baseURL, "https://") && !strings.HasPrefix(cfg.baseURL, "http://") {
		return nil, fmt.Errorf("RELEASE_BASE_URL=%q is not an http(s) URL; set it to where the archives will be downloaded from", cfg.baseURL)
	}

	cfg.sign, err = signerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// defaultBaseURL is the project's release download folder; the version is
// appended.
const defaultBaseURL = "https://git.timemachine.center/timemachine/instance-sync/releases/download"

// zipEpoch is the earliest time a zip entry can carry.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// safeToEmpty refuses an output folder that holds the repository or
// anything a release does not write: the release empties it first.
func safeToEmpty(out, root string) error {
	if rel, err := filepath.Rel(out, root); err == nil && !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("-out=%s holds the repository and would be emptied; name a folder of its own", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil // not there yet (or unreadable: creating it will say)
	}
	ours := map[string]bool{"SHA256SUMS": true, "scoop": true, "winget": true}
	for _, t := range allTargets {
		ours[t.archive()] = true
	}
	for _, e := range entries {
		if !ours[e.Name()] {
			return fmt.Errorf("-out=%s holds %s, which no release writes, and would be emptied; name an empty folder or an earlier release's", out, e.Name())
		}
	}
	return nil
}

func selectTargets(platforms string) ([]target, error) {
	if platforms == "" {
		return allTargets, nil
	}
	var out []target
	for _, p := range strings.Split(platforms, ",") {
		p = strings.TrimSpace(p)
		n := len(out)
		for _, t := range allTargets {
			if t.platform() == p {
				out = append(out, t)
			}
		}
		if len(out) == n {
			var known []string
			for _, t := range allTargets {
				if !slices.Contains(known, t.platform()) {
					known = append(known, t.platform())
				}
			}
			return nil, fmt.Errorf("-platforms: %q is not a release platform; use some of %s", p, strings.Join(known, ","))
		}
	}
	return out, nil
}

// repoRoot is the folder holding this module's go.mod, found from the
// working directory (go run and go test both run inside the module).
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, "go.mod")) && isFile(filepath.Join(d, "tools", "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no instance-sync checkout (go.mod beside tools/go.mod) above %s; run from inside the repository", wd)
		}
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return "", errors.New("git printed nothing")
	}
	return s, nil
}
