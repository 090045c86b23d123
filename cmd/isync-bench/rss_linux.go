package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// peakRSS runs a program and returns its own peak resident set size in
// bytes, excluding its children (restic). The rusage of a waited child
// cannot give that: on Linux its ru_maxrss is the larger of the child's
// own peak and that of the children it reaped. So the program runs traced
// with PTRACE_O_TRACEEXIT, which stops it on its way out while its memory
// is still mapped, and VmHWM (the high-water mark of its resident memory)
// is read from /proc then.
func peakRSS(dir string, env []string, name string, args ...string) (int64, error) {
	// Every ptrace request must come from the thread that started the
	// tracee.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	errf, err := os.CreateTemp("", "isync-bench-stderr-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	p, err := os.StartProcess(name, append([]string{name}, args...), &os.ProcAttr{
		Dir: dir, Env: env, Files: []*os.File{devnull, devnull, errf},
		Sys: &syscall.SysProcAttr{Ptrace: true},
	})
	if err != nil {
		return 0, err
	}
	defer p.Release()
	pid := p.Pid
	var hwm int64
	first := true
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			return 0, err
		}
		switch {
		case ws.Exited() || ws.Signaled():
			if ws.ExitStatus() != 0 {
				data, _ := os.ReadFile(errf.Name())
				return hwm, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), ws, lastLines(string(data)))
			}
			if hwm == 0 {
				return 0, fmt.Errorf("no exit stop seen for %s", name)
			}
			return hwm, nil
		case !ws.Stopped():
			continue
		}
		sig := ws.StopSignal()
		switch {
		case first && sig == syscall.SIGTRAP:
			// The stop after exec: ask for a stop at exit from now on.
			first = false
			if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACEEXIT); err != nil {
				_ = p.Kill()
				return 0, err
			}
			sig = 0
		case sig == syscall.SIGTRAP && ws.TrapCause() == syscall.PTRACE_EVENT_EXIT:
			if hwm, err = vmHWM(pid); err != nil {
				_ = p.Kill()
				return 0, err
			}
			sig = 0
		}
		// Any other stop is a signal for the program (the Go runtime uses
		// SIGURG for preemption): pass it on.
		if err := syscall.PtraceCont(pid, int(sig)); err != nil {
			return 0, err
		}
	}
}

func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
