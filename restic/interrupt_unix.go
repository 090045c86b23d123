//go:build !windows

package restic

import "os"

// interrupt asks restic to stop cleanly: it removes its lock on SIGINT.
func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }
