package scope

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is what the manifest remembers of one file: enough to notice a
// change without reading it.
type Entry struct {
	Size  int64  `json:"s"`
	MTime int64  `json:"m"` // nanoseconds since the Unix epoch
	Mode  uint32 `json:"p"` // permission bits
}

// Manifest maps slash-separated paths relative to the pack folder to their
// entries. Only regular files are recorded.
type Manifest map[string]Entry

// Walk stats every file in scope under pack. It reads no file contents.
func (s Scope) Walk(pack string) (Manifest, error) {
	m := Manifest{}
	for _, inc := range s.Include {
		rel := strings.TrimSuffix(inc, "/")
		root := filepath.Join(pack, filepath.FromSlash(rel))
		fi, err := os.Lstat(root)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			if fi.Mode().IsRegular() && s.InScope(rel) {
				m[rel] = entryOf(fi)
			}
			continue
		}
		if s.folderExcluded(rel) {
			// The folder itself is excluded (e.g. scope.json excludes it).
			continue
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, _ := filepath.Rel(pack, p)
			r = filepath.ToSlash(r)
			if d.IsDir() {
				if p != root && s.Excluded(r, true) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || s.Excluded(r, false) {
				return nil
			}
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while walking
			}
			if err != nil {
				return err
			}
			m[r] = entryOf(info)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

func entryOf(fi fs.FileInfo) Entry {
	return Entry{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode().Perm())}
}

// Paths returns the manifest's paths, sorted.
func (m Manifest) Paths() []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Bytes is the total size of the files in the manifest.
func (m Manifest) Bytes() int64 {
	var n int64
	for _, e := range m {
		n += e.Size
	}
	return n
}

// Changes lists what differs between an old and a new manifest.
type Changes struct {
	Added, Modified, Removed []string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Modified) == 0 && len(c.Removed) == 0
}

// All returns every changed path, sorted.
func (c Changes) All() []string {
	out := append(append(append([]string(nil), c.Added...), c.Modified...), c.Removed...)
	sort.Strings(out)
	return out
}

// Diff compares old (the last synced manifest) with cur (now).
func Diff(old, cur Manifest) Changes {
	var c Changes
	for p, e := range cur {
		o, ok := old[p]
		switch {
		case !ok:
			c.Added = append(c.Added, p)
		case o != e:
			c.Modified = append(c.Modified, p)
		}
	}
	for p := range old {
		if _, ok := cur[p]; !ok {
			c.Removed = append(c.Removed, p)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Modified)
	sort.Strings(c.Removed)
	return c
}

// Worlds returns the world folder names (saves/<name>) among paths.
func Worlds(paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		rest, ok := strings.CutPrefix(p, "saves/")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
