package instance

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/internal/filelock"
)

// ErrLockHeld means another sync of the same instance is running.
var ErrLockHeld = errors.New("another sync of this instance is running")

// Lock is the held local lock.
type Lock struct{ f *os.File }

// AcquireLock takes the instance's lock without waiting. The lock is an OS
// file lock, so a lock left by a process that died is free again at once;
// the pid written into the file only serves the error message.
func (p Paths) AcquireLock() (*Lock, error) {
	if err := os.MkdirAll(p.Dir(), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p.Lock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	ok, err := filelock.TryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p.Lock(), err)
	}
	if !ok {
		data, _ := os.ReadFile(p.Lock())
		f.Close()
		pid := strings.TrimSpace(string(data))
		if _, perr := strconv.Atoi(pid); perr != nil {
			pid = "?"
		}
		return nil, fmt.Errorf("%w (pid %s, lock %s); wait for it to finish", ErrLockHeld, pid, p.Lock())
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release frees the lock.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = filelock.Unlock(l.f)
	l.f.Close()
	l.f = nil
}
