package ui

import (
	"fmt"
	"strings"
	"time"
)

// DescribeConflict renders a conflict as lines for a terminal or a
// launcher log; the dialog shows the same lines.
func DescribeConflict(c Conflict) []string {
	lines := []string{"this computer: " + side(c.Local, "changed")}
	for i, h := range c.Cloud {
		name := "cloud"
		if len(c.Cloud) > 1 {
			name = fmt.Sprintf("cloud version %d", i+1)
		}
		lines = append(lines, name+": "+side(h, "pushed"))
	}
	if c.Merges {
		lines = append(lines, "only these worlds changed on both sides; everything else merges either way")
	}
	lines = append(lines, "nothing is lost either way: choosing the cloud first saves this computer's files as a safety snapshot")
	return lines
}

func side(s Side, verb string) string {
	var b strings.Builder
	if s.SnapshotID != "" {
		fmt.Fprintf(&b, "%.8s ", s.SnapshotID)
	}
	host := s.Host
	if s.Label != "" {
		host += " (" + s.Label + ")"
	}
	fmt.Fprintf(&b, "%s on %s", verb, host)
	if !s.Time.IsZero() {
		fmt.Fprintf(&b, " %s (%s)", Ago(time.Since(s.Time)), s.Time.Local().Format("2006-01-02 15:04"))
	}
	if s.Files > 0 {
		fmt.Fprintf(&b, ", %s, %s", Plural(s.Files, "file"), HumanBytes(s.Size))
	}
	if len(s.Worlds) > 0 {
		fmt.Fprintf(&b, ", worlds: %s", strings.Join(s.Worlds, ", "))
	}
	return b.String()
}

// Ago renders a duration the way a player reads it: "2 hours ago".
func Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return Plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return Plural(int(d/time.Hour), "hour") + " ago"
	default:
		return Plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

// Plural counts a unit in English: "1 file", "3 files".
func Plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
