// Package filelock takes exclusive OS file locks without waiting: flock on
// Unix, LockFileEx on the first byte on Windows. The lock belongs to the
// open file, so two handles in one process also exclude each other, and
// the OS releases it when its holder dies: a crash never leaves a stale
// lock behind.
package filelock

import "os"

// TryLock locks f exclusively without blocking. ok is false when another
// open file holds the lock; err is for anything else.
func TryLock(f *os.File) (ok bool, err error) { return tryLock(f) }

// Unlock releases a lock TryLock took (closing f releases it too).
func Unlock(f *os.File) error { return unlock(f) }
