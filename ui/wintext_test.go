package ui

import (
	"testing"
	"time"
	"unicode/utf8"
)

func TestWindowsProgressText(t *testing.T) {
	tests := []struct {
		p    Progress
		want string
	}{
		{Progress{Op: "push"}, "starting…"},
		{Progress{Op: "push", Percent: 35, BytesDone: 17 << 20, BytesTotal: 48 << 20}, "35% · 17.0 MiB of 48.0 MiB"},
		{Progress{Op: "push", Percent: 35, BytesDone: 17 << 20, BytesTotal: 48 << 20, ETA: 5 * time.Second, CurrentFile: "saves/World/region/r.0.0.mca"}, "35% · 17.0 MiB of 48.0 MiB"},
		{Progress{Op: "push", Percent: 5, BytesDone: 1 << 20, BytesTotal: 20 << 20, ETA: 5 * time.Second}, "5% · 1.0 MiB of 20.0 MiB · about 5s left"},
		{Progress{Op: "push", Percent: 35, BytesDone: 170 << 20, BytesTotal: 480 << 20, ETA: 65 * time.Second}, "35% · 170.0 MiB of 480.0 MiB"},
		{Progress{Op: "push", Percent: 100, BytesTotal: 48 << 20}, "48.0 MiB · finishing the upload"},
	}
	for _, tt := range tests {
		got := windowsProgressText(ProgressLines(tt.p))
		if got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.p, got, tt.want)
		}
		if utf8.RuneCountInString(got) > windowsLabelRunes {
			t.Errorf("%q is longer than the label", got)
		}
	}
}

func TestWindowsLabel(t *testing.T) {
	for _, text := range []string{"Server URL (from your community):", "Instance id, or empty for a new one:\nmore", "Continue an instance, or a new one:"} {
		if got := windowsLabel(text); utf8.RuneCountInString(got) > windowsLabelRunes {
			t.Errorf("%q is longer than the label", got)
		}
	}
}
