//go:build !linux

package main

import "errors"

// peakRSS needs ptrace and /proc; other systems report no figure.
func peakRSS(dir string, env []string, name string, args ...string) (int64, error) {
	return 0, errors.New("peak memory is measured on Linux only")
}

func vmHWM(pid int) (int64, error) { return 0, errors.New("peak memory is measured on Linux only") }
