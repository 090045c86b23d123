//go:build windows

package restic

import "os"

// interrupt kills restic: Windows has no SIGINT for a child without a
// console; a stale lock left behind is removed by the next run.
func interrupt(p *os.Process) error { return p.Kill() }
