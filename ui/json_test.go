package ui

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestJSONEvents: one object per line, "type" and "time" on each, the
// conflict sides under their documented names, progress rate-limited.
func TestJSONEvents(t *testing.T) {
	var out, human strings.Builder
	j := NewJSON(&out, NewPlain(&human))
	j.Event(Event{Type: "start", Data: map[string]any{"op": "pull", "instance": "01X", "label": "Skyblock"}})
	j.Event(Event{Type: "conflict", Data: map[string]any{"reason": "r", "heads": []string{"abc"}, "local": conflict.Local, "cloud": conflict.Cloud}})
	j.ProgressStart("pull")
	j.ProgressUpdate(Progress{Op: "pull", Percent: 10, ETA: 2 * time.Second})
	j.ProgressUpdate(Progress{Op: "pull", Percent: 20}) // within a second: dropped
	j.ProgressDone()
	j.Warn("careful")
	j.Error("broken")
	var types []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not one JSON object per line: %q", sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
			t.Fatalf("time: %v", err)
		}
		types = append(types, m["type"].(string))
		switch m["type"] {
		case "conflict":
			local := m["local"].(map[string]any)
			for _, k := range []string{"host", "time", "bytes", "files", "worlds"} {
				if _, ok := local[k]; !ok {
					t.Errorf("conflict local lacks %q: %v", k, local)
				}
			}
			if m["cloud"].([]any)[0].(map[string]any)["snapshot"] != "0123456789abcdef" {
				t.Errorf("cloud side: %v", m["cloud"])
			}
		case "progress":
			for _, k := range []string{"op", "percent", "bytes_done", "bytes_total", "files_done", "files_total", "eta_seconds", "current_file"} {
				if _, ok := m[k]; !ok {
					t.Errorf("progress lacks %q", k)
				}
			}
		}
	}
	if got := strings.Join(types, " "); got != "start conflict progress warning error" {
		t.Fatalf("events: %s", got)
	}
	if human.String() != "instance-sync: warning: careful\ninstance-sync: error: broken\n" {
		t.Fatalf("human: %q", human.String())
	}
}
