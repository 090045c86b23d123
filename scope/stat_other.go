//go:build !unix

package scope

import (
	"io/fs"
	"os"
)

// statIn stats the entry d of the open folder dir. On Windows the folder
// listing already carries the metadata.
func statIn(_ *os.File, d fs.DirEntry) (Entry, error) {
	info, err := d.Info()
	if err != nil {
		return Entry{}, err
	}
	return entryOf(info), nil
}
