//go:build !linux && !windows

package watch

import (
	"errors"
	"time"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// Supported reports whether this system has a change watcher.
const Supported = false

var errUnsupported = errors.New("the change watcher needs Linux or Windows")

// Serve runs a watcher; only on Linux.
func Serve(pack string, sc scope.Scope, base Base, maxAge time.Duration) error {
	return errUnsupported
}

// Query asks the watcher of pack; without one it returns ErrNotRunning.
func Query(pack string, req byte, timeout time.Duration) (Base, error) {
	return Base{}, ErrNotRunning
}

// Start starts a watcher; only on Linux.
func Start(exe, argv0, pack string) error { return errUnsupported }

// Pids finds no watcher: there is none off Linux.
func Pids(pack string) []int { return nil }
