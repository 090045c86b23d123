//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

// TestGUIToolsDocumented (where the GUI test runs): the README says, next to the two set-up
// commands, what the GUI test needs (without it the test only skips
// locally), and .ci/run installs each of them on a fresh machine.
func TestGUIToolsDocumented(t *testing.T) {
	root := testenv.ModuleRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, tryIt, _ := strings.Cut(string(readme), "## Try it")
	tryIt, _, _ = strings.Cut(tryIt, "\n## ")
	if !strings.Contains(tryIt, "make test") {
		t.Fatal(`README has no "## Try it" section with "make test"`)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range guiTools {
		if !strings.Contains(tryIt, tool.name) {
			t.Errorf("README's set-up section does not name %s, which the GUI test needs", tool.name)
		}
		if !strings.Contains(string(ci), "command -v "+tool.command+" >/dev/null || gui+=("+tool.debian+")") {
			t.Errorf(".ci/run does not install %s when %s is missing", tool.debian, tool.command)
		}
	}
}
