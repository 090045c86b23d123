//go:build windows

package worldlock

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// Held reports whether another process holds a lock on path: taking the
// lock briefly fails while the game holds it.
func Held(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		// The game opens it without sharing: that alone means it is open.
		return true, nil
	}
	defer f.Close()
	var ol windows.Overlapped
	h := windows.Handle(f.Fd())
	if err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol); err != nil {
		return true, nil
	}
	_ = windows.UnlockFileEx(h, 0, 1, 0, &ol)
	return false, nil
}
