// Package testenv finds the real restic the tests drive. A test that needs
// it skips when it is missing, except under CI=true, where that is a
// failure: CI must prove the sync against the real thing.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Restic returns the path of restic 0.18.1: $INSTANCE_SYNC_TEST_RESTIC, or
// .bin/restic at the module root (where "make tools" builds it).
func Restic(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("INSTANCE_SYNC_TEST_RESTIC"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if root := ModuleRoot(); root != "" {
		p := filepath.Join(root, ".bin", "restic")
		if runtime.GOOS == "windows" {
			p += ".exe"
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("restic not found: run \"make tools\" or set INSTANCE_SYNC_TEST_RESTIC (required under CI=true)")
	}
	t.Skip("restic not found: run \"make tools\" or set INSTANCE_SYNC_TEST_RESTIC")
	return ""
}

// ModuleRoot is the folder holding go.mod, found from the working
// directory upwards; "" if none.
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if filepath.Base(dir) == "tools" {
				dir = filepath.Dir(dir)
				continue
			}
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
