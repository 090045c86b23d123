//go:build !windows

package worldlock

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Held reports whether another process holds a lock on path. F_GETLK asks
// without locking anything.
func Held(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		f, err = os.Open(path)
		if err != nil {
			return false, nil // unreadable lock file: not ours to judge
		}
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return false, nil
	}
	if lk.Type != unix.F_UNLCK {
		return true, nil
	}
	// Some JVMs use flock(2) instead; probe it without waiting.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true, nil
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false, nil
}
