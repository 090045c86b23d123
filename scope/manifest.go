package scope

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
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
// Folders are read in parallel: the walk runs before every game start, and
// on a large instance it is mostly waiting for stat calls.
func (s Scope) Walk(pack string) (Manifest, error) {
	m, _, err := s.WalkFacts(pack)
	return m, err
}

// Facts are what a walk saw besides the files it recorded.
type Facts struct {
	// Irregular counts entries in scope that are neither files nor
	// folders (symlinks, devices): the manifest leaves them out.
	Irregular int
}

// WalkFacts is Walk, also reporting Facts.
func (s Scope) WalkFacts(pack string) (Manifest, Facts, error) {
	return s.walk(pack, nil)
}

// WalkEach is Walk calling before with each folder it reads (relative,
// slash-separated), before reading it; an error from before ends the walk.
// A change watcher uses it to watch each folder before taking its files'
// stats, so no change falls between the two.
func (s Scope) WalkEach(pack string, before func(rel string) error) (Manifest, error) {
	m, _, err := s.walk(pack, before)
	return m, err
}

func (s Scope) walk(pack string, before func(rel string) error) (Manifest, Facts, error) {
	w := walker{s: s, pack: pack, m: Manifest{}, sem: make(chan struct{}, walkers), before: before}
	for _, inc := range s.Include {
		rel := strings.TrimSuffix(inc, "/")
		fi, err := os.Lstat(filepath.Join(pack, filepath.FromSlash(rel)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, Facts{}, err
		}
		if !fi.IsDir() {
			if !fi.Mode().IsRegular() && s.InScope(rel) {
				w.irregular++
			}
			if fi.Mode().IsRegular() && s.InScope(rel) {
				w.mu.Lock()
				w.m[rel] = entryOf(fi)
				w.mu.Unlock()
			}
			continue
		}
		if s.folderExcluded(rel) {
			// The folder itself is excluded (e.g. scope.json excludes it).
			continue
		}
		w.wg.Add(1)
		go w.dir(rel)
	}
	w.wg.Wait()
	if w.err != nil {
		return nil, Facts{}, w.err
	}
	n := len(w.m)
	for _, files := range w.found {
		n += len(files)
	}
	m := make(Manifest, n)
	maps.Copy(m, w.m)
	for _, files := range w.found {
		for _, f := range files {
			m[f.path] = f.e
		}
	}
	return m, Facts{Irregular: w.irregular}, nil
}

// found is one file a walk recorded.
type found struct {
	path string
	e    Entry
}

// walkers bounds the folders read at once: enough to keep the disk busy
// with stat calls, few enough not to exhaust file descriptors.
const walkers = 16

type walker struct {
	s      Scope
	pack   string
	sem    chan struct{}
	wg     sync.WaitGroup
	before func(rel string) error

	mu        sync.Mutex
	m         Manifest  // files named by the scope's include entries
	found     [][]found // each folder's files, in the order folders finished
	err       error
	irregular int
}

// dir reads the folder rel (slash-separated, relative to the pack folder),
// records its files and starts a walk of each subfolder in scope.
func (w *walker) dir(rel string) {
	defer w.wg.Done()
	w.sem <- struct{}{}
	files, irregular, err := w.read(rel)
	<-w.sem
	w.mu.Lock()
	defer w.mu.Unlock()
	w.irregular += irregular
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	if len(files) > 0 {
		w.found = append(w.found, files)
	}
}

func (w *walker) read(rel string) ([]found, int, error) {
	if w.before != nil {
		if err := w.before(rel); err != nil {
			return nil, 0, err
		}
	}
	f, err := os.Open(filepath.Join(w.pack, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil // deleted while walking
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, 0, err
	}
	files := make([]found, 0, len(entries))
	irregular := 0
	for _, d := range entries {
		r := rel + "/" + d.Name()
		switch {
		case d.IsDir():
			if !w.s.Excluded(r, true) {
				w.wg.Add(1)
				go w.dir(r)
			}
		case !d.Type().IsRegular():
			if !w.s.Excluded(r, false) {
				irregular++
			}
		case !w.s.Excluded(r, false):
			e, err := statIn(f, d)
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while walking
			}
			if err != nil {
				return nil, 0, err
			}
			files = append(files, found{r, e})
		}
	}
	return files, irregular, nil
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

// Digest is a SHA-256 over the sorted entries: equal digests mean equal
// manifests, so a no-op sync compares 64 characters instead of decoding
// thousands of entries.
func (m Manifest) Digest() string {
	h := sha256.New()
	var buf []byte
	for _, p := range m.Paths() {
		e := m[p]
		buf = append(buf[:0], p...)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, e.Size, 10)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, e.MTime, 10)
		buf = append(buf, 0)
		buf = strconv.AppendUint(buf, uint64(e.Mode), 8)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AppendJSON appends the manifest as JSON, exactly as encoding/json writes
// it (keys sorted, the same escapes), at a fraction of the cost: state is
// written after every push and pull, and reflection over 10,000 entries was
// most of that write.
func (m Manifest) AppendJSON(b []byte) []byte {
	paths := m.Paths()
	// One allocation of about the right size: growing a megabyte step by
	// step costs more in fresh pages than the encoding itself.
	n := 2
	for _, p := range paths {
		n += len(p) + 64
	}
	b = slices.Grow(b, n)
	b = append(b, '{')
	for i, p := range paths {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p)
		e := m[p]
		b = append(b, `:{"s":`...)
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, `,"m":`...)
		b = strconv.AppendInt(b, e.MTime, 10)
		b = append(b, `,"p":`...)
		b = strconv.AppendUint(b, uint64(e.Mode), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does. Printable ASCII other
// than the characters it escapes goes as is; anything else (rare in a
// path) is left to encoding/json, except a name that is not UTF-8, which
// encoding/json would change: it goes as rawKey(s).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			if !utf8.ValidString(s) {
				s = rawKey(s)
			}
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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

// UnmarshalJSON reads a manifest as SaveState writes it, without
// reflection: state.json of a 10,000-file instance is read by every pull
// and push, including the no-op ones a player waits for at every launch.
// Anything but the plain form written by encoding/json (escaped names,
// other fields, unusual spacing) goes through encoding/json as before.
func (m *Manifest) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if out, ok := parseManifest(data); ok {
		*m = out
		return nil
	}
	var plain map[string]Entry
	if err := json.Unmarshal(data, &plain); err != nil {
		return err
	}
	for k, e := range plain {
		if p, ok := fromRawKey(k); ok {
			delete(plain, k)
			plain[p] = e
		}
	}
	*m = plain
	return nil
}

// A file name on Linux and macOS is any bytes, but a JSON string holds
// only UTF-8: encoding/json writes each invalid byte as U+FFFD, and the
// name read back would name no file. So a path that is not UTF-8 is
// written as a NUL (which no file name holds) and the base64 of its bytes.
const rawKeyMark = "\x00"

func rawKey(p string) string { return rawKeyMark + base64.RawStdEncoding.EncodeToString([]byte(p)) }

// fromRawKey decodes a rawKey; ok is false for any other string.
func fromRawKey(k string) (string, bool) {
	enc, ok := strings.CutPrefix(k, rawKeyMark)
	if !ok {
		return "", false
	}
	b, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// parseManifest parses {"path":{"s":N,"m":N,"p":N},...} with nothing
// escaped in the paths and no spaces; ok is false for anything else.
func parseManifest(d []byte) (Manifest, bool) {
	if len(d) < 2 || d[0] != '{' {
		return nil, false
	}
	m := make(Manifest, bytes.Count(d, []byte("},"))+1)
	i := 1
	if d[i] == '}' {
		return m, i+1 == len(d)
	}
	for {
		key, n, ok := plainString(d, i)
		if !ok || n >= len(d) || d[n] != ':' {
			return nil, false
		}
		var e Entry
		if i, ok = parseEntry(d, n+1, &e); !ok {
			return nil, false
		}
		m[key] = e
		if i >= len(d) {
			return nil, false
		}
		switch d[i] {
		case ',':
			i++
		case '}':
			return m, i+1 == len(d)
		default:
			return nil, false
		}
	}
}

// plainString reads a JSON string at d[i] that has no escapes and no
// control characters, returning it and the index after it.
func plainString(d []byte, i int) (string, int, bool) {
	if i >= len(d) || d[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(d); j++ {
		switch c := d[j]; {
		case c == '"':
			s := d[i+1 : j]
			if !utf8.Valid(s) {
				return "", 0, false
			}
			return string(s), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// parseEntry reads {"s":N,"m":N,"p":N} (fields in any order, each at most
// once) at d[i] and returns the index after it.
func parseEntry(d []byte, i int, e *Entry) (int, bool) {
	if i >= len(d) || d[i] != '{' {
		return 0, false
	}
	i++
	var seen [3]bool
	for {
		if i+4 >= len(d) || d[i] != '"' || d[i+2] != '"' || d[i+3] != ':' {
			return 0, false
		}
		field := d[i+1]
		i += 4
		j := i
		if j < len(d) && d[j] == '-' {
			j++
		}
		for j < len(d) && d[j] >= '0' && d[j] <= '9' {
			j++
		}
		num := string(d[i:j])
		switch field {
		case 's', 'm':
			v, err := strconv.ParseInt(num, 10, 64)
			if err != nil || (len(num) > 1 && num[0] == '0') || strings.HasPrefix(num, "-0") {
				return 0, false
			}
			k := 0
			if field == 'm' {
				k = 1
			}
			if seen[k] {
				return 0, false
			}
			seen[k] = true
			if field == 's' {
				e.Size = v
			} else {
				e.MTime = v
			}
		case 'p':
			v, err := strconv.ParseUint(num, 10, 32)
			if err != nil || seen[2] || (len(num) > 1 && num[0] == '0') {
				return 0, false
			}
			seen[2] = true
			e.Mode = uint32(v)
		default:
			return 0, false
		}
		i = j
		if i >= len(d) {
			return 0, false
		}
		switch d[i] {
		case ',':
			i++
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}
