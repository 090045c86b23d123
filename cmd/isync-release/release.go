package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/resticbin"
)

// resticModule is the restic module tools/go.mod pins; the release builds
// restic's command from it.
const resticModule = "github.com/restic/restic"

// release builds every target into cfg.out.
func release(ctx context.Context, cfg *config) error {
	for _, w := range cfg.warnings {
		fmt.Fprintf(cfg.log, "note: %s\n", w)
	}
	if cfg.sign == nil {
		if !cfg.second {
			fmt.Fprintln(cfg.log, "note: RELEASE_SIGN_PKCS12 is not set; the Windows binaries are unsigned")
		}
	} else if _, err := exec.LookPath("osslsigncode"); err != nil {
		return fmt.Errorf("RELEASE_SIGN_PKCS12 is set but osslsigncode is not installed; install it (Debian: apt-get install osslsigncode)")
	}
	fmt.Fprintf(cfg.log, "building %s, archive times %s\n", cfg.version, cfg.epoch.Format(time.RFC3339))

	resticDir, err := resticSource(ctx, cfg)
	if err != nil {
		return err
	}
	docs := []struct{ name, path string }{
		{"README.md", filepath.Join(cfg.root, "README.md")},
		{"LICENSE.txt", filepath.Join(cfg.root, "LICENSE")},
		{"restic-README.md", filepath.Join(resticDir, "README.md")},
		{"restic-LICENSE.txt", filepath.Join(resticDir, "LICENSE")},
	}
	for _, d := range docs {
		if !isFile(d.path) {
			return fmt.Errorf("%s is missing; the archives ship it as %s", d.path, d.name)
		}
	}

	if err := os.RemoveAll(cfg.out); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "isync-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	restics := map[string]string{} // platform -> built (and signed) restic
	var archives []string
	for _, t := range cfg.targets {
		dir := filepath.Join(work, t.cmd+"_"+t.goos+"_"+t.goarch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		restic, ok := restics[t.platform()]
		if !ok {
			restic = filepath.Join(work, "restic_"+t.goos+"_"+t.goarch, t.exe("restic"))
			if err := buildRestic(ctx, cfg, t, restic); err != nil {
				return err
			}
			if restic, err = cfg.signIfWindows(ctx, t, restic); err != nil {
				return err
			}
			restics[t.platform()] = restic
		}
		bin := filepath.Join(dir, t.exe(t.cmd))
		if err := buildCmd(ctx, cfg, t, bin); err != nil {
			return err
		}
		if bin, err = cfg.signIfWindows(ctx, t, bin); err != nil {
			return err
		}

		entries := []entry{
			{name: t.exe(t.cmd), path: bin, exec: true},
			{name: t.exe("restic-" + resticbin.Version), path: restic, exec: true},
		}
		for _, d := range docs {
			entries = append(entries, entry{name: d.name, path: d.path})
		}
		name := t.archive()
		if err := writeArchive(filepath.Join(cfg.out, name), entries, cfg.epoch); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		archives = append(archives, name)
		fmt.Fprintf(cfg.log, "%-40s %10d bytes\n", name, fileSize(filepath.Join(cfg.out, name)))
	}

	sums, err := writeSums(cfg.out, archives)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.log, "wrote SHA256SUMS (%d archives)\n", len(archives))
	for _, t := range cfg.targets {
		if t.cmd == "instance-sync" && t.goos == "windows" {
			m := packageInfo{
				Version:    cfg.version,
				URL:        cfg.baseURL + "/" + t.archive(),
				SHA256:     sums[t.archive()],
				Exe:        t.exe(t.cmd),
				Restic:     t.exe("restic-" + resticbin.Version),
				ReleaseDay: cfg.epoch.Format(time.DateOnly),
			}
			files, err := writeManifests(cfg.out, m)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintf(cfg.log, "wrote %s\n", f)
			}
		}
	}
	return nil
}

// resticSource checks that tools/go.mod pins the restic version the
// program expects and returns the module's source folder (for its README
// and LICENSE).
func resticSource(ctx context.Context, cfg *config) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", resticModule)
	cmd.Dir = filepath.Join(cfg.root, "tools")
	cmd.Env = goEnv(cfg, "", "")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find %s in tools/go.mod: %w%s", resticModule, err, stderrOf(err))
	}
	version, dir, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if version != "v"+resticbin.Version {
		return "", fmt.Errorf("tools/go.mod pins restic %s but resticbin.Version is %s; make them agree", version, resticbin.Version)
	}
	if dir == "" {
		// Not downloaded yet: go build fetches it, and go list -m then knows.
		dl := exec.CommandContext(ctx, "go", "mod", "download", resticModule)
		dl.Dir = cmd.Dir
		dl.Env = cmd.Env
		if out, err := dl.CombinedOutput(); err != nil {
			return "", fmt.Errorf("download %s: %w: %s", resticModule, err, out)
		}
		return resticSource(ctx, cfg)
	}
	return dir, nil
}

// goEnv is the environment of the go commands: the target platform with
// cgo off and the default instruction-set levels pinned, so a developer's
// GOAMD64 does not change the bytes.
func goEnv(cfg *config, goos, goarch string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{"GOOS=", "GOARCH=", "CGO_ENABLED=", "GOAMD64=", "GOARM64=", "GOCACHE=", "GOEXPERIMENT="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})
	env = append(env, "CGO_ENABLED=0", "GOAMD64=v1", "GOARM64=v8.0")
	if goos != "" {
		env = append(env, "GOOS="+goos, "GOARCH="+goarch)
	}
	if cfg.gocache != "" {
		env = append(env, "GOCACHE="+cfg.gocache)
	}
	return env
}

// buildFlags make the output depend on the source alone: no file system
// paths (-trimpath), no build ID, no VCS stamp (a tarball build must match a
// git checkout's), no symbol table or DWARF.
func buildFlags(extraLdflags string) []string {
	ld := "-s -w -buildid="
	if extraLdflags != "" {
		ld += " " + extraLdflags
	}
	return []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=" + ld}
}

func buildRestic(ctx context.Context, cfg *config, t target, out string) error {
	start := time.Now()
	args := append(buildFlags(""), "-o", out, resticModule+"/cmd/restic")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(cfg.root, "tools")
	cmd.Env = goEnv(cfg, t.goos, t.goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build restic for %s: %w\n%s", t.platform(), err, b)
	}
	fmt.Fprintf(cfg.log, "built restic %s for %s in %s\n", resticbin.Version, t.platform(), time.Since(start).Round(time.Second))
	return nil
}

func buildCmd(ctx context.Context, cfg *config, t target, out string) error {
	pkg := filepath.Join(cfg.root, "cmd", t.cmd)
	if t.goos == "windows" {
		// The linker takes .syso files from the package's folder; the
		// _windows_<arch> suffix keeps every other build from seeing it,
		// and it is removed right after (and ignored by git).
		syso := filepath.Join(pkg, "zz_release_windows_"+t.goarch+".syso")
		if err := writeSyso(syso, t, cfg.version); err != nil {
			return err
		}
		defer os.Remove(syso)
	}
	args := append(buildFlags("-X main.version="+cfg.version), "-o", out, "./cmd/"+t.cmd)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = cfg.root
	cmd.Env = goEnv(cfg, t.goos, t.goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %w\n%s", t.cmd, t.platform(), err, b)
	}
	return nil
}

// signIfWindows signs a Windows executable when a certificate is set and
// returns the path of the file to ship.
func (cfg *config) signIfWindows(ctx context.Context, t target, path string) (string, error) {
	if cfg.sign == nil || t.goos != "windows" {
		return path, nil
	}
	signed := strings.TrimSuffix(path, ".exe") + ".signed.exe"
	if err := cfg.sign.sign(ctx, path, signed, cfg.epoch); err != nil {
		return "", err
	}
	fmt.Fprintf(cfg.log, "signed %s for %s\n", filepath.Base(path), t.platform())
	return signed, nil
}

// writeSums writes SHA256SUMS in sha256sum's format, sorted by name, and
// returns the digests.
func writeSums(dir string, names []string) (map[string]string, error) {
	sums := map[string]string{}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	var b strings.Builder
	for _, n := range sorted {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		s := sha256.Sum256(data)
		sums[n] = hex.EncodeToString(s[:])
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return sums, os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
