package instance

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"git.timemachine.center/timemachine/instance-sync/internal/atomicfile"
)

// Prism Launcher and MultiMC export an instance by zipping its whole
// folder (the one holding instance.cfg), hidden files included, leaving
// out only logs/, crash-reports/ and the paths listed in the instance's
// .packignore: one path per line, relative to that folder, "/" between
// names, a path covering everything below it. Listing the pack folder's
// .cloud-sync there keeps an export from carrying this instance's sync
// state, so whoever imports it gets an instance that is not opted in.

// PackIgnoreName is the launchers' export ignore list, at the instance root.
const PackIgnoreName = ".packignore"

// PackIgnore is the .packignore that should list this pack folder's
// .cloud-sync, and the entry: the pack folder's parent when it holds
// instance.cfg (Prism's and MultiMC's layout: <instance>/minecraft or
// <instance>/.minecraft), else the pack folder itself when it does. ok is
// false for other launchers' folders.
func (p Paths) PackIgnore() (file, entry string, ok bool) {
	abs, err := filepath.Abs(p.Pack)
	if err != nil {
		return "", "", false
	}
	if root := filepath.Dir(abs); root != abs && isFile(filepath.Join(root, "instance.cfg")) {
		return filepath.Join(root, PackIgnoreName), filepath.Base(abs) + "/" + DirName, true
	}
	if isFile(filepath.Join(abs, "instance.cfg")) {
		return filepath.Join(abs, PackIgnoreName), DirName, true
	}
	return "", "", false
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// AddPackIgnore lists entry in the .packignore file, first, unless a line
// already says it. The player's lines are left byte for byte, so
// RemovePackIgnore gives back exactly what was there. changed reports a
// write.
func AddPackIgnore(file, entry string) (changed bool, err error) {
	data, mode, err := readPackIgnore(file)
	if err != nil {
		return false, err
	}
	for _, l := range lines(data) {
		if string(trimEOL(l)) == entry {
			return false, nil
		}
	}
	out := append([]byte(entry+"\n"), data...)
	return true, writePackIgnore(file, out, mode)
}

// RemovePackIgnore takes entry's lines out of the .packignore file and
// leaves every other byte. A file left empty is removed (the launchers
// treat no file and an empty one alike). changed reports a write.
func RemovePackIgnore(file, entry string) (changed bool, err error) {
	data, mode, err := readPackIgnore(file)
	if err != nil || data == nil {
		return false, err
	}
	var out []byte
	ls := lines(data)
	for i, l := range ls {
		if string(trimEOL(l)) != entry {
			out = append(out, l...)
			continue
		}
		changed = true
		// The launcher writes its list without a final newline: taking
		// the last line out takes the newline before it too.
		if i == len(ls)-1 && len(trimEOL(l)) == len(l) && len(out) > 0 && out[len(out)-1] == '\n' {
			out = out[:len(out)-1]
		}
	}
	if !changed {
		return false, nil
	}
	if len(out) == 0 {
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return true, nil
	}
	return true, writePackIgnore(file, out, mode)
}

// readPackIgnore returns nil data for a missing file.
func readPackIgnore(file string) ([]byte, fs.FileMode, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0o644, nil
	}
	if err != nil {
		return nil, 0, err
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	return data, mode, nil
}

// writePackIgnore replaces the file, or the file a link points to.
func writePackIgnore(file string, data []byte, mode fs.FileMode) error {
	if real, err := filepath.EvalSymlinks(file); err == nil {
		file = real
	}
	return atomicfile.Write(file, data, mode)
}

// lines splits data after each "\n", keeping it; the last line may lack it.
func lines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data)
			break
		}
		out = append(out, data[:i+1])
		data = data[i+1:]
	}
	return out
}

// trimEOL drops a line's "\n" or "\r\n".
func trimEOL(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r"))
}
