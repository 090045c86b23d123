//go:build !unix

package scope

import (
	"errors"
	"io/fs"
	"os"
)

// readFolder calls fn with each entry of the open folder dir that skip
// does not refuse, with its kind and, for a file, its entry. On Windows
// the folder listing already carries the metadata. An entry deleted
// meanwhile is left out.
func readFolder(dir *os.File, skip func(name string) bool, fn func(name string, k kind, e Entry)) error {
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, d := range entries {
		name := d.Name()
		switch {
		case skip(name):
		case d.IsDir():
			fn(name, kindDir, Entry{})
		case !d.Type().IsRegular():
			fn(name, kindOther, Entry{})
		default:
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			fn(name, kindFile, entryOf(info))
		}
	}
	return nil
}
