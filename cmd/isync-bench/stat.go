package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// statEnv makes the bench binary the bare-stat baseline: it reads the
// NUL-separated list of paths the variable names (relative to its working
// folder) and stats them from one goroutine per core, nothing else.
const statEnv = "ISYNC_BENCH_STAT_LIST"

// statMain is the bench binary run as the baseline.
func statMain(list string) int {
	data, err := os.ReadFile(list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "isync-bench:", err)
		return 1
	}
	paths := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	workers := runtime.NumCPU()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(paths); i += workers {
				if _, err := os.Lstat(paths[i]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "isync-bench:", err)
			return 1
		}
	}
	return 0
}

// writeStatList writes the files in the default sync scope of pack as the
// stat baseline's list, and returns its path.
func writeStatList(pack, list string) (int, error) {
	sc := scope.New(scope.Overrides{})
	var b bytes.Buffer
	n := 0
	err := filepath.WalkDir(pack, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(pack, p)
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && sc.InScope(filepath.ToSlash(rel)) {
			b.WriteString(rel)
			b.WriteByte(0)
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, os.WriteFile(list, b.Bytes(), 0o600)
}
