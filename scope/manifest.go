package scope

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	f, _, err := s.WalkFiles(pack, nil)
	if err != nil {
		return nil, err
	}
	return f.Manifest(), nil
}

// Facts are what a walk saw besides the files it recorded.
type Facts struct {
	// Irregular counts entries in scope that are neither files nor
	// folders (symlinks, devices): the manifest leaves them out.
	Irregular int
}

// WalkFacts is Walk, also reporting Facts.
func (s Scope) WalkFacts(pack string) (Manifest, Facts, error) {
	f, facts, err := s.WalkFiles(pack, nil)
	if err != nil {
		return nil, Facts{}, err
	}
	return f.Manifest(), facts, nil
}

// WalkFiles is Walk keeping the files as Files, which takes a third of
// the memory of a Manifest. before, if not nil, is called with each
// folder the walk reads (relative, slash-separated), before reading it;
// an error from before ends the walk. A change watcher uses it to watch
// each folder before taking its files' stats, so no change falls between
// the two.
func (s Scope) WalkFiles(pack string, before func(rel string) error) (*Files, Facts, error) {
	w := walker{s: s, pack: pack, sem: make(chan struct{}, walkers), before: before, byName: s.namePatterns()}
	root := &folder{}
	// An include entry inside another one's folder is reached by that
	// folder's walk, unless something on the way (a symlink, an
	// exclusion) stops it: those are walked after the others, where the
	// first walk did not reach them.
	incs := slices.Clone(s.Include)
	slices.SortStableFunc(incs, func(a, b string) int {
		return strings.Count(strings.TrimSuffix(a, "/"), "/") - strings.Count(strings.TrimSuffix(b, "/"), "/")
	})
	var nested []string
	for _, inc := range incs {
		rel := strings.TrimSuffix(inc, "/")
		if s.insideInclude(rel) {
			nested = append(nested, rel)
			continue
		}
		if err := w.root(root, rel); err != nil {
			return nil, Facts{}, err
		}
	}
	w.wg.Wait()
	for _, rel := range nested {
		if w.err != nil {
			break
		}
		if reached(root, rel) {
			continue
		}
		if err := w.root(root, rel); err != nil {
			return nil, Facts{}, err
		}
		w.wg.Wait()
	}
	if w.err != nil {
		return nil, Facts{}, w.err
	}
	root.sort()
	return &Files{root: root, n: int(w.files.Load())}, Facts{Irregular: int(w.irregular.Load())}, nil
}

// insideInclude reports whether rel lies in the folder of another include
// entry.
func (s Scope) insideInclude(rel string) bool {
	for _, inc := range s.Include {
		if dir, ok := strings.CutSuffix(inc, "/"); ok && strings.HasPrefix(rel, dir+"/") {
			return true
		}
	}
	return false
}

// reached reports whether the walk read the folder that holds rel: then
// it judged rel as rel's own walk would.
func reached(root *folder, rel string) bool {
	d := root
	for {
		name, rest, more := strings.Cut(rel, "/")
		if !more {
			return d != root && d.walked
		}
		if d = d.subByName(name); d == nil {
			return false
		}
		rel = rest
	}
}

// subByName is sub for a folder whose subs are not sorted yet.
func (d *folder) subByName(name string) *folder {
	for _, s := range d.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// at returns the folder rel below d, making the folders on the way (not
// walked) as needed.
func (d *folder) at(rel string) *folder {
	for rel != "" {
		name, rest, _ := strings.Cut(rel, "/")
		sub := d.subByName(name)
		if sub == nil {
			r := name
			if d.rel != "" {
				r = d.rel + "/" + name
			}
			sub = &folder{name: name, rel: r}
			d.subs = append(d.subs, sub)
		}
		d, rel = sub, rest
	}
	return d
}

// root starts the walk of one include entry rel.
func (w *walker) root(root *folder, rel string) error {
	fi, err := os.Lstat(filepath.Join(w.pack, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	parent, name := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		parent, name = rel[:i], rel[i+1:]
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() && w.s.InScope(rel) {
			w.irregular.Add(1)
		}
		if fi.Mode().IsRegular() && w.s.InScope(rel) {
			d := root.at(parent)
			d.pending = append(d.pending, found{name, entryOf(fi)})
			w.files.Add(1)
		}
		return nil
	}
	if w.s.folderExcluded(rel) {
		// The folder itself is excluded (e.g. scope.json excludes it).
		return nil
	}
	d := root.at(rel)
	d.walked = true
	w.wg.Add(1)
	go w.dir(d)
	return nil
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
	byName []namePattern // the exclude patterns, when all are bare names

	files, irregular atomic.Int64

	mu  sync.Mutex
	err error
}

// dir reads the folder d, records its files and starts a walk of each
// subfolder in scope.
func (w *walker) dir(d *folder) {
	defer w.wg.Done()
	w.sem <- struct{}{}
	err := w.read(d)
	<-w.sem
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
}

func (w *walker) read(d *folder) error {
	rel := d.rel
	if w.before != nil {
		if err := w.before(rel); err != nil {
			return err
		}
	}
	f, err := os.Open(filepath.Join(w.pack, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted while walking
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var files []found
	irregular := 0
	err = readFolder(f, func(name string) bool {
		// Skipped before its stat when excluded as a file and as a folder.
		return w.excluded(rel, name, false) && w.excluded(rel, name, true)
	}, func(name string, k kind, e Entry) {
		switch k {
		case kindDir:
			if !w.excluded(rel, name, true) {
				sub := &folder{name: name, rel: rel + "/" + name, walked: true}
				d.subs = append(d.subs, sub)
				w.wg.Add(1)
				go w.dir(sub)
			}
		case kindOther:
			if !w.excluded(rel, name, false) {
				irregular++
			}
		default:
			if !w.excluded(rel, name, false) {
				files = append(files, found{name, e})
			}
		}
	})
	if err != nil {
		return err
	}
	d.setFiles(files)
	w.files.Add(int64(len(files)))
	w.irregular.Add(int64(irregular))
	return nil
}

// kind is what a folder entry is.
type kind int

const (
	kindFile  kind = iota // a regular file
	kindDir               // a folder
	kindOther             // a symlink, device, socket…
)

// excluded is Scope.Excluded for the entry name of the folder dir. When
// every pattern is a bare name, it matches the name alone: this runs for
// every file of every walk, and building each path cost more than the
// match.
func (w *walker) excluded(dir, name string, isDir bool) bool {
	if w.byName == nil {
		return w.s.Excluded(dir+"/"+name, isDir)
	}
	for _, p := range w.byName {
		if p.dirOnly && !isDir {
			continue
		}
		switch {
		case p.exact:
			if name == p.name {
				return true
			}
		case p.suffix != "":
			if strings.HasSuffix(name, p.suffix) {
				return true
			}
		default:
			if ok, _ := path.Match(p.name, name); ok {
				return true
			}
		}
	}
	return false
}

// namePattern is an exclude pattern that matches a name at any depth,
// sorted as matchName does once for every name it will see.
type namePattern struct {
	name    string
	dirOnly bool
	exact   bool   // no wildcard
	suffix  string // "*" and a suffix without wildcards: the suffix
}

// namePatterns returns the scope's exclude patterns as names, or nil when
// one of them needs the whole path (or packwiz owns files).
func (s Scope) namePatterns() []namePattern {
	if len(s.Packwiz) > 0 {
		return nil
	}
	out := []namePattern{}
	for _, p := range s.Exclude {
		q, dirOnly := strings.CutSuffix(p, "/")
		if name, ok := strings.CutPrefix(q, "**/"); ok && !strings.Contains(name, "/") && name != "**" {
			q = name
		}
		if q == "" || strings.Contains(q, "/") {
			return nil
		}
		np := namePattern{name: q, dirOnly: dirOnly, exact: !strings.ContainsAny(q, `*?[\`)}
		if rest, ok := strings.CutPrefix(q, "*"); ok && !strings.ContainsAny(rest, `*?[\`) {
			np.suffix = rest
		}
		out = append(out, np)
	}
	return out
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
		buf = appendDigestLine(append(buf[:0], p...), m[p])
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
		b = appendJSONEntry(b, p, m[p])
	}
	return append(b, '}')
}

// appendJSONEntry appends "path":{"s":N,"m":N,"p":N}.
func appendJSONEntry[S ~string | ~[]byte](b []byte, p S, e Entry) []byte {
	b = appendJSONString(b, p)
	b = append(b, `:{"s":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	b = append(b, `,"m":`...)
	b = strconv.AppendInt(b, e.MTime, 10)
	b = append(b, `,"p":`...)
	b = strconv.AppendUint(b, uint64(e.Mode), 10)
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does. Printable ASCII other
// than the characters it escapes goes as is; anything else (rare in a
// path) is left to encoding/json, except a name that is not UTF-8, which
// encoding/json would change: it goes as rawKey(s).
func appendJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			str := string(s)
			if !utf8.ValidString(str) {
				str = rawKey(str)
			}
			q, _ := json.Marshal(str) // a string always marshals
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
// Anything but the plain form written by encoding/json (unusual spacing,
// other fields) goes through encoding/json as before.
func (m *Manifest) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	out, err := ReadManifest(bytes.NewReader(data))
	if errors.Is(err, errUnusual) {
		out, err = decodeStd(data)
	}
	if err != nil {
		return err
	}
	*m = out
	return nil
}

// ReadManifest decodes a manifest file (the JSON AppendJSON and WriteJSON
// write, or encoding/json) from r, a file at a time: the file is about
// ten times the size of its Manifest.
func ReadManifest(r io.Reader) (Manifest, error) {
	var m Manifest
	err := ScanManifest(r, func(p string, e Entry) error {
		if m == nil {
			m = Manifest{}
		}
		m[p] = e
		return nil
	})
	if errors.Is(err, errUnusual) {
		// Read again through encoding/json, if r can start over.
		s, ok := r.(io.Seeker)
		if !ok {
			return nil, err
		}
		if _, serr := s.Seek(0, io.SeekStart); serr != nil {
			return nil, serr
		}
		data, rerr := io.ReadAll(r)
		if rerr != nil {
			return nil, rerr
		}
		return decodeStd(data)
	}
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = Manifest{}
	}
	return m, nil
}

// decodeStd decodes a manifest through encoding/json.
func decodeStd(data []byte) (Manifest, error) {
	var plain map[string]Entry
	if err := json.Unmarshal(data, &plain); err != nil {
		return nil, err
	}
	for k, e := range plain {
		if p, ok := fromRawKey(k); ok {
			delete(plain, k)
			plain[p] = e
		}
	}
	if plain == nil {
		plain = Manifest{}
	}
	return plain, nil
}

// errUnusual is a manifest in a form ScanManifest does not read (spacing,
// other fields): encoding/json reads it, or says what is wrong with it.
var errUnusual = errors.New("not in the form instance-sync writes")

// ScanManifest calls fn with each file of a manifest file read from r, in
// the file's order (path order, as written), without holding the file or
// a Manifest. It reads the form AppendJSON writes, "null" and any name
// encoding/json can read; for anything else it returns an error that
// ReadManifest answers by reading the whole file through encoding/json
// (fn may have been called for some files before).
func ScanManifest(r io.Reader, fn func(p string, e Entry) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	c, err := br.ReadByte()
	if err != nil {
		return errUnusual
	}
	if c == 'n' {
		rest := make([]byte, 3)
		if _, err := io.ReadFull(br, rest); err != nil || string(rest) != "ull" {
			return errUnusual
		}
		return scanEnd(br)
	}
	if c != '{' {
		return errUnusual
	}
	if c, err = br.ReadByte(); err != nil {
		return errUnusual
	}
	if c == '}' {
		return scanEnd(br)
	}
	var key []byte
	for {
		if c != '"' {
			return errUnusual
		}
		key = key[:0]
		for {
			part, err := br.ReadSlice('"')
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return errUnusual
			}
			key = append(key, part...)
			if err == nil && !escapedQuote(key) {
				break
			}
		}
		p, ok := plainKey(key[:len(key)-1])
		if !ok {
			var s string
			if json.Unmarshal(append([]byte{'"'}, key...), &s) != nil {
				return errUnusual
			}
			if raw, isRaw := fromRawKey(s); isRaw {
				s = raw
			}
			p = s
		}
		if c, err = br.ReadByte(); err != nil || c != ':' {
			return errUnusual
		}
		obj, err := br.ReadSlice('}')
		if err != nil {
			return errUnusual
		}
		var e Entry
		if n, ok := parseEntry(obj, 0, &e); !ok || n != len(obj) {
			return errUnusual
		}
		if err := fn(p, e); err != nil {
			return err
		}
		if c, err = br.ReadByte(); err != nil {
			return errUnusual
		}
		switch c {
		case ',':
			if c, err = br.ReadByte(); err != nil {
				return errUnusual
			}
		case '}':
			return scanEnd(br)
		default:
			return errUnusual
		}
	}
}

// escapedQuote reports whether the quote ending s is escaped (an odd
// number of backslashes before it).
func escapedQuote(s []byte) bool {
	n := 0
	for i := len(s) - 2; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// plainKey returns s as a name when it holds no escapes, no control
// characters and only UTF-8.
func plainKey(s []byte) (string, bool) {
	for _, c := range s {
		if c == '\\' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(s) {
		return "", false
	}
	return string(s), true
}

// scanEnd accepts only white space after the manifest.
func scanEnd(br *bufio.Reader) error {
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return errUnusual
		}
	}
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
