//go:build linux

package restic

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes restic die when instance-sync is killed (launchers
// kill hooks without warning): an orphaned restore racing the next run's
// resume could leave files mixed.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
