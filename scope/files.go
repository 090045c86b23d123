package scope

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"iter"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Files is a walk's result kept as the folders it read: each file's name
// (the string the folder listing made) and entry under its folder, the
// folder's path once. On a 250,000-file instance a Manifest (a map keyed by
// full paths) takes about 160 bytes a file; Files takes about 55, so a push
// that never builds the map stays small. Files is read-only; it iterates
// in the order of its full paths (sort.Strings order), the order Digest and
// the manifest file need.
type Files struct {
	root *folder // the pack folder; holds the include entries' paths
	n    int
}

// folder is one folder of a walk. files and subs are sorted by name once
// the walk ends.
type folder struct {
	name   string // the last component ("" for the pack folder)
	rel    string // slash-separated, relative to the pack folder
	walked bool   // read by the walk (not only a folder above an include entry)
	// names holds the files' names one after the other, in the order of
	// files: a file costs its entry and its name's bytes, no string of
	// its own (a quarter of a 250,000-file walk's memory).
	names   string
	files   []file
	pending []found // files not yet in names and files (setFiles)
	subs    []*folder
}

// file is a file's entry and where its name ends in its folder's names.
type file struct {
	size, mtime int64
	end, mode   uint32
}

// found is a file as a walk finds it.
type found struct {
	name string
	e    Entry
}

// fileName is the name of d's i-th file.
func (d *folder) fileName(i int) string {
	start := uint32(0)
	if i > 0 {
		start = d.files[i-1].end
	}
	return d.names[start:d.files[i].end]
}

func (d *folder) entry(i int) Entry {
	f := d.files[i]
	return Entry{Size: f.size, MTime: f.mtime, Mode: f.mode}
}

// setFiles makes fs, sorted by name, d's files.
func (d *folder) setFiles(fs []found) {
	if !slices.IsSortedFunc(fs, func(a, b found) int { return strings.Compare(a.name, b.name) }) {
		slices.SortFunc(fs, func(a, b found) int { return strings.Compare(a.name, b.name) })
	}
	n := 0
	for _, f := range fs {
		n += len(f.name)
	}
	var b strings.Builder
	b.Grow(n)
	files := make([]file, len(fs))
	for i, f := range fs {
		b.WriteString(f.name)
		files[i] = file{size: f.e.Size, mtime: f.e.MTime, end: uint32(b.Len()), mode: f.e.Mode}
	}
	d.names, d.files = b.String(), files
}

// Len is the number of files.
func (f *Files) Len() int {
	if f == nil {
		return 0
	}
	return f.n
}

// sub returns the subfolder named name of d, or nil.
func (d *folder) sub(name string) *folder {
	i, ok := slices.BinarySearchFunc(d.subs, name, func(s *folder, n string) int { return cmpSubs(s.name, n) })
	if !ok {
		return nil
	}
	return d.subs[i]
}

// lookup returns the folder rel (slash-separated; "" is the pack folder),
// or nil.
func (f *Files) lookup(rel string) *folder {
	d := f.root
	for rel != "" && d != nil {
		var name string
		name, rel, _ = strings.Cut(rel, "/")
		d = d.sub(name)
	}
	return d
}

// Get returns the entry of the file p.
func (f *Files) Get(p string) (Entry, bool) {
	if f == nil {
		return Entry{}, false
	}
	dir, name := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, name = p[:i], p[i+1:]
	}
	d := f.lookup(dir)
	if d == nil {
		return Entry{}, false
	}
	i, ok := sort.Find(len(d.files), func(i int) int { return strings.Compare(name, d.fileName(i)) })
	if !ok {
		return Entry{}, false
	}
	return d.entry(i), true
}

// each calls fn with every file in path order: its folder's path
// (relative, "" for the pack folder), its name and its entry. fn must not
// keep dir beyond the call.
func (f *Files) each(fn func(dir []byte, name string, e Entry) bool) {
	if f == nil || f.root == nil {
		return
	}
	f.root.each(make([]byte, 0, 256), fn)
}

// each visits d's files and subfolders merged in path order: a
// subfolder sub sorts as "sub/" among the file names.
func (d *folder) each(dir []byte, fn func(dir []byte, name string, e Entry) bool) bool {
	i, j := 0, 0
	for i < len(d.files) || j < len(d.subs) {
		if j == len(d.subs) || i < len(d.files) && cmpFileSub(d.fileName(i), d.subs[j].name) < 0 {
			if !fn(dir, d.fileName(i), d.entry(i)) {
				return false
			}
			i++
			continue
		}
		s := d.subs[j]
		j++
		sub := dir
		if len(sub) > 0 {
			sub = append(sub, '/')
		}
		if !s.each(append(sub, s.name...), fn) {
			return false
		}
	}
	return true
}

// cmpFileSub compares the file name f with the folder name d followed by
// "/": the order of their full paths under one folder.
func cmpFileSub(f, d string) int {
	n := min(len(f), len(d))
	if c := strings.Compare(f[:n], d[:n]); c != 0 {
		return c
	}
	if len(f) <= len(d) {
		return -1 // f is a prefix of d + "/"
	}
	if f[n] < '/' {
		return -1
	}
	return 1
}

// cmpSubs compares the folder names a and b each followed by "/": the
// order of the paths inside them.
func cmpSubs(a, b string) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 || len(a) == len(b) {
		return c
	}
	if len(a) < len(b) {
		return -cmpFileSub(b, a)
	}
	return cmpFileSub(a, b)
}

// joined is dir + "/" + name in buf.
func joined(buf, dir []byte, name string) []byte {
	buf = append(buf[:0], dir...)
	if len(dir) > 0 {
		buf = append(buf, '/')
	}
	return append(buf, name...)
}

// All yields every file's path and entry in path order.
func (f *Files) All() iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		var buf []byte
		f.each(func(dir []byte, name string, e Entry) bool {
			buf = joined(buf, dir, name)
			return yield(string(buf), e)
		})
	}
}

// Paths yields every file's path in path order.
func (f *Files) Paths() iter.Seq[string] {
	return func(yield func(string) bool) {
		for p := range f.All() {
			if !yield(p) {
				return
			}
		}
	}
}

// Manifest returns the files as a Manifest.
func (f *Files) Manifest() Manifest {
	m := make(Manifest, f.Len())
	for p, e := range f.All() {
		m[p] = e
	}
	return m
}

// Bytes is the total size of the files.
func (f *Files) Bytes() int64 {
	var n int64
	f.each(func(_ []byte, _ string, e Entry) bool {
		n += e.Size
		return true
	})
	return n
}

// Digest is Manifest.Digest of the same files.
func (f *Files) Digest() string {
	h := sha256.New()
	var buf []byte
	f.each(func(dir []byte, name string, e Entry) bool {
		buf = appendDigestLine(joined(buf, dir, name), e)
		h.Write(buf)
		return true
	})
	return hex.EncodeToString(h.Sum(nil))
}

// appendDigestLine appends what Digest hashes after a file's path.
func appendDigestLine(buf []byte, e Entry) []byte {
	buf = append(buf, 0)
	buf = strconv.AppendInt(buf, e.Size, 10)
	buf = append(buf, 0)
	buf = strconv.AppendInt(buf, e.MTime, 10)
	buf = append(buf, 0)
	buf = strconv.AppendUint(buf, uint64(e.Mode), 8)
	return append(buf, '\n')
}

// WriteJSON writes the files as Manifest.AppendJSON does, a file at a
// time: the encoded manifest of a large instance is ten times the size of
// Files in memory.
func (f *Files) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf, path []byte
	buf = append(buf, '{')
	first := true
	f.each(func(dir []byte, name string, e Entry) bool {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		path = joined(path, dir, name)
		buf = appendJSONEntry(buf, path, e)
		if len(buf) >= 32<<10 {
			_, _ = bw.Write(buf) // the error stays in bw for Flush
			buf = buf[:0]
		}
		return true
	})
	buf = append(buf, '}', '\n')
	_, _ = bw.Write(buf)
	return bw.Flush()
}

// FilesOf returns m as Files.
func FilesOf(m Manifest) *Files {
	root := &folder{walked: true}
	byRel := map[string]*folder{"": root}
	var at func(rel string) *folder
	at = func(rel string) *folder {
		if d, ok := byRel[rel]; ok {
			return d
		}
		parent, name := "", rel
		if i := strings.LastIndexByte(rel, '/'); i >= 0 {
			parent, name = rel[:i], rel[i+1:]
		}
		p := at(parent)
		d := &folder{name: name, rel: rel, walked: true}
		p.subs = append(p.subs, d)
		byRel[rel] = d
		return d
	}
	for p, e := range m {
		dir, name := "", p
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			dir, name = p[:i], p[i+1:]
		}
		d := at(dir)
		d.pending = append(d.pending, found{name, e})
	}
	root.sort()
	return &Files{root: root, n: len(m)}
}

// sort orders the files and subfolders of d and of every folder below it
// by name.
func (d *folder) sort() {
	if len(d.pending) > 0 {
		all := d.pending
		for i := range d.files {
			all = append(all, found{d.fileName(i), d.entry(i)})
		}
		d.setFiles(all)
		d.pending = nil
	}
	slices.SortFunc(d.subs, func(a, b *folder) int { return cmpSubs(a.name, b.name) })
	for _, s := range d.subs {
		s.sort()
	}
}

// WriteJSON writes what AppendJSON appends, and a newline, a file at a
// time.
func (m Manifest) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := []byte{'{'}
	for i, p := range m.Paths() {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONEntry(buf, p, m[p])
		if len(buf) >= 32<<10 {
			_, _ = bw.Write(buf) // the error stays in bw for Flush
			buf = buf[:0]
		}
	}
	buf = append(buf, '}', '\n')
	_, _ = bw.Write(buf)
	return bw.Flush()
}

// Digester computes Manifest.Digest of files given one at a time in path
// order (as a manifest file holds them), without the Manifest.
type Digester struct {
	h        hash.Hash
	buf      []byte
	last     string
	n        int
	unsorted bool
}

// NewDigester returns an empty Digester.
func NewDigester() *Digester { return &Digester{h: sha256.New()} }

// Add adds the file p.
func (d *Digester) Add(p string, e Entry) {
	if d.n > 0 && p <= d.last {
		d.unsorted = true
	}
	d.n++
	d.last = p
	d.buf = appendDigestLine(append(d.buf[:0], p...), e)
	d.h.Write(d.buf)
}

// Sum returns the digest; ok is false when the files did not come in
// path order (the digest would not be Manifest.Digest).
func (d *Digester) Sum() (digest string, ok bool) {
	return hex.EncodeToString(d.h.Sum(nil)), !d.unsorted
}
