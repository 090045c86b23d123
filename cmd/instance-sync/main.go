// Command instance-sync keeps a Minecraft launcher instance's worlds and
// options in sync across computers. See the README.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"

	"golang.org/x/term"

	"git.timemachine.center/timemachine/instance-sync/cli"
)

// version is stamped at release: -ldflags "-X main.version=v1.2.3".
var version string

func main() { os.Exit(run()) }

func run() int {
	// A CPU profile of one run, for finding where a hook's time goes
	// (pprof merges the profiles of many runs).
	if path := os.Getenv("INSTANCE_SYNC_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "instance-sync: INSTANCE_SYNC_CPUPROFILE:", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	exe, _ := os.Executable()
	return cli.Main(context.Background(), cli.Env{
		Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv, Version: version, Exe: exe, Argv0: os.Args[0],
		IsTerminal: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
	})
}
