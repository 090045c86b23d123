package launcher

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// processNames are the lower-case names a running launcher shows up as.
// ATLauncher is a Java program on Linux and macOS, so there its jar or
// package name is looked for in the command line instead.
func processNames(l Launcher) []string {
	switch l {
	case Prism:
		return []string{"prismlauncher"}
	case MultiMC:
		return []string{"multimc"}
	default:
		return []string{"atlauncher"}
	}
}

// ProcessRunning reports whether l is running on this computer: /proc on
// Linux, tasklist on Windows, ps elsewhere. It is the default
// Options.IsRunning.
func ProcessRunning(ctx context.Context, l Launcher) (bool, error) {
	names := processNames(l)
	switch runtime.GOOS {
	case "linux":
		return procRunning(names)
	case "windows":
		out, err := exec.CommandContext(ctx, "tasklist", "/FO", "CSV", "/NH").Output()
		if err != nil {
			return false, err
		}
		return tasklistHas(out, names), nil
	default:
		// Program and arguments are read separately: macOS paths hold
		// spaces ("Prism Launcher.app"), so one column could not be split.
		comms, err := exec.CommandContext(ctx, "ps", "-axww", "-o", "pid=,comm=").Output()
		if err != nil {
			return false, err
		}
		args, err := exec.CommandContext(ctx, "ps", "-axww", "-o", "pid=,args=").Output()
		if err != nil {
			return false, err
		}
		return psHas(comms, args, names), nil
	}
}

func procRunning(names []string) (bool, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if matchProcess(strings.TrimSpace(string(comm)), strings.ReplaceAll(string(cmdline), "\x00", " "), names) {
			return true, nil
		}
	}
	return false, nil
}

// matchProcess compares the program name exactly and, for Java launchers,
// looks for the launcher's jar among the arguments. Our own command line
// ("instance-sync hooks install --launcher=atlauncher") must not count.
func matchProcess(comm, cmdline string, names []string) bool {
	c := strings.ToLower(comm)
	args := strings.ToLower(cmdline)
	if strings.Contains(args, "instance-sync") {
		return false
	}
	for _, n := range names {
		if c == n || strings.TrimSuffix(c, ".exe") == n {
			return true
		}
		if strings.HasPrefix(c, "java") && strings.Contains(args, n) {
			return true
		}
		// The first argument is the program; compare its file name.
		first, _, _ := strings.Cut(args, " ")
		base := first[strings.LastIndexAny(first, `/\`)+1:]
		if base == n || strings.TrimSuffix(base, ".exe") == n {
			return true
		}
	}
	return false
}

// tasklistHas reads `tasklist /FO CSV /NH`: one "image","pid",... per line.
func tasklistHas(out []byte, names []string) bool {
	for _, line := range bytes.Split(out, []byte("\n")) {
		fields := strings.Split(strings.TrimSpace(string(line)), ",")
		if len(fields) == 0 {
			continue
		}
		image := strings.ToLower(strings.Trim(fields[0], `"`))
		for _, n := range names {
			if strings.TrimSuffix(image, ".exe") == n {
				return true
			}
		}
	}
	return false
}

// psHas reads two `ps -o pid=,...=` listings, executables and command lines.
func psHas(comms, args []byte, names []string) bool {
	byPID := func(out []byte) map[string]string {
		m := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			pid, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
			if ok {
				m[pid] = strings.TrimSpace(rest)
			}
		}
		return m
	}
	cmdlines := byPID(args)
	for pid, comm := range byPID(comms) {
		base := comm[strings.LastIndex(comm, "/")+1:]
		if matchProcess(base, cmdlines[pid], names) {
			return true
		}
	}
	return false
}
