package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// checkReproducible builds the release a second time, from a copy of the
// source tree at another path (and with an empty build cache when fresh),
// and compares every file with the first build's. A difference is an error
// naming the files.
func checkReproducible(ctx context.Context, cfg *config, fresh bool) error {
	tmp, err := os.MkdirTemp("", "isync-release-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	if err := copyTree(ctx, cfg.root, src); err != nil {
		return err
	}
	second := *cfg
	second.root = src
	second.out = filepath.Join(tmp, "dist")
	second.warnings = nil
	second.second = true
	second.log = &prefixWriter{w: cfg.log, prefix: "check: "}
	cache := "the usual build cache"
	if fresh {
		second.gocache = filepath.Join(tmp, "gocache")
		cache = "an empty build cache"
	}
	fmt.Fprintf(cfg.log, "check: building again from %s with %s\n", src, cache)
	if err := release(ctx, &second); err != nil {
		return fmt.Errorf("second build: %w", err)
	}
	n, err := compareTrees(cfg.out, second.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.log, "reproducible: the second build's %d files (from another folder, with %s) are byte-identical to %s\n", n, cache, cfg.out)
	return nil
}

// copyTree copies the files git would commit (tracked and untracked, less
// ignored ones) from root to dst, so the copy builds what the tree holds now.
func copyTree(ctx context.Context, root, dst string) error {
	list, err := gitOutput(ctx, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return fmt.Errorf("-check copies the tree with git ls-files, which failed in %s: %w", root, err)
	}
	for _, rel := range strings.Split(strings.Trim(list, "\x00"), "\x00") {
		from := filepath.Join(root, filepath.FromSlash(rel))
		fi, err := os.Lstat(from)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted but still tracked, or a symlink
		}
		to := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// compareTrees reports whether a and b hold the same files with the same
// bytes, and how many files that is.
func compareTrees(a, b string) (int, error) {
	fa, err := listFiles(a)
	if err != nil {
		return 0, err
	}
	fb, err := listFiles(b)
	if err != nil {
		return 0, err
	}
	if !slices.Equal(fa, fb) {
		return 0, fmt.Errorf("not reproducible: the builds wrote different files:\n  %s\n  %s", strings.Join(fa, " "), strings.Join(fb, " "))
	}
	var differ []string
	for _, rel := range fa {
		da, err := os.ReadFile(filepath.Join(a, rel))
		if err != nil {
			return 0, err
		}
		db, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(da, db) {
			differ = append(differ, fmt.Sprintf("%s (sha256 %x vs %x)", rel, sha256.Sum256(da), sha256.Sum256(db)))
		}
	}
	if len(differ) > 0 {
		return 0, fmt.Errorf("not reproducible: %d files differ between the builds: %s", len(differ), strings.Join(differ, "; "))
	}
	return len(fa), nil
}

func listFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	slices.Sort(out)
	return out, err
}

// prefixWriter starts every line with prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !p.mid {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		line, rest, found := bytes.Cut(b, []byte("\n"))
		if found {
			line = append(line, '\n')
		}
		if _, err := p.w.Write(line); err != nil {
			return 0, err
		}
		p.mid = !found
		b = rest
	}
	return n, nil
}
