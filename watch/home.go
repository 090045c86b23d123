//go:build linux || windows

package watch

import (
	"fmt"
	"os"
	"time"
)

// checkEvery is how often a watcher checks that its pack folder is still
// the folder it watches. A folder above it moved away touches no watched
// folder, and Wine reports nothing when a watched folder is deleted: no
// event would end the watcher, and it would run until its max age.
var checkEvery = 10 * time.Second

// home is the pack folder a watcher watches, as it was when it started.
type home struct {
	path string
	fi   os.FileInfo
}

func homeOf(pack string) (home, error) {
	fi, err := os.Stat(pack)
	if err != nil {
		return home{}, err
	}
	// Windows reads a folder's file id at the first SameFile, from its
	// path: read now, or it would be the id of what the path leads to then.
	os.SameFile(fi, fi)
	return home{pack, fi}, nil
}

// gone returns ErrChanged, saying why, when the pack folder is no longer
// there (deleted, or moved away with a folder above it): the watches
// follow the folder, not its path. Else nil.
func (h home) gone() error {
	fi, err := os.Stat(h.path)
	if err == nil && os.SameFile(fi, h.fi) {
		return nil
	}
	return fmt.Errorf("%w: %s is no longer the folder it watched (deleted or moved)", ErrChanged, h.path)
}
