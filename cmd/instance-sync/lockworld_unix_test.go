//go:build !windows

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockWorld takes an fcntl write lock, as Java's FileChannel.lock does.
func lockWorld(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	return unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
}
