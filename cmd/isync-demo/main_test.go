package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

// TestCommandLineCopyPastable: the demo prints each command so that
// pasting it into a shell runs it with the same arguments, spaces and
// quotes included.
func TestCommandLineCopyPastable(t *testing.T) {
	args := []string{"init", "--url=http://127.0.0.1:8000", "--pack-folder=/tmp/demo/desktop/My Pack/minecraft", "--instance-label=Bob's world", "plain"}
	got := commandLine(args)
	want := `$ instance-sync init --url=http://127.0.0.1:8000 --pack-folder='/tmp/demo/desktop/My Pack/minecraft' --instance-label='Bob'\''s world' plain`
	if got != want {
		t.Fatalf("commandLine =\n%s\nwant\n%s", got, want)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to paste into")
	}
	line := strings.Replace(strings.TrimPrefix(got, "$ "), "instance-sync", `printf '%s\n'`, 1)
	out, err := exec.Command(sh, "-c", line).Output()
	if err != nil {
		t.Fatal(err)
	}
	if back := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(back, args) {
		t.Fatalf("the shell read %q, want %q", back, args)
	}
}

// TestMakeSaysItBuildsRestic: "make demo" and "make tools" say what they
// build the first time (restic takes minutes on a slow machine), and say
// nothing about it once it is built.
func TestMakeSaysItBuildsRestic(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make not found (required under CI=true)")
		}
		t.Skip("make not found")
	}
	root := testenv.ModuleRoot()
	bin := t.TempDir()
	dryRun := func(target string) string {
		t.Helper()
		out, err := exec.Command("make", "-n", "-C", root, "BIN="+bin, target).CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", target, err, out)
		}
		return string(out)
	}
	const say = "building restic 0.18.1 from its pinned Go module (tools/go.mod): about 90 s the first time"
	for _, target := range []string{"demo", "tools", filepath.Join(bin, "restic")} {
		if out := dryRun(target); strings.Count(out, say) != 1 {
			t.Errorf("make %s on a fresh machine does not say once %q:\n%s", target, say, out)
		}
	}
	// Built: newer than tools/go.mod, so make has nothing to say.
	restic := filepath.Join(bin, "restic")
	if err := os.WriteFile(restic, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(restic, later, later); err != nil {
		t.Fatal(err)
	}
	if out := dryRun("demo"); strings.Contains(out, "building restic") {
		t.Errorf("make demo with restic built still says it builds it:\n%s", out)
	}
	// make tools builds the Windows restic too (for the Wine tests): it
	// says so until that one is built.
	const sayWindows = "building restic 0.18.1 for Windows from tools/go.mod (the Wine tests): about 90 s the first time"
	if out := dryRun("tools"); strings.Count(out, sayWindows) != 1 || strings.Contains(out, say) {
		t.Errorf("make tools with only the Linux restic built:\n%s", out)
	}
}
