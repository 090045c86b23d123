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
	j.Event(StartEvent{Op: "pull", Instance: "01X", Label: "Skyblock"})
	j.Event(ConflictEvent{Reason: "r", Heads: []string{"abc"}, Local: conflict.Local, Cloud: conflict.Cloud})
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

// TestEventJSON pins each --json event's object: the README's table is a
// contract that programs (python/cloud_sync) parse.
func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 31, 8, 497000000, time.FixedZone("CET", 3600))
	when := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	side := Side{Host: "desk", Label: "Skyblock", Time: when, Size: 2048, Files: 3, Worlds: []string{"World"}}
	cloud := Side{SnapshotID: "0123456789abcdef", Host: "laptop", Time: when, Size: 10, Files: 1}
	for _, tt := range []struct {
		e    Event
		want string
	}{
		{StartEvent{Op: "pull", Instance: "01JD3Q6TZ0S5V9J3WQ6R6C2F4K", Label: "Skyblock"},
			`{"instance":"01JD3Q6TZ0S5V9J3WQ6R6C2F4K","label":"Skyblock","op":"pull","time":"2026-11-25T11:31:08.497Z","type":"start"}`},
		{DecisionEvent{Action: "conflict", Reason: "both this computer and the cloud have changes"},
			`{"action":"conflict","reason":"both this computer and the cloud have changes","target":"","time":"2026-11-25T11:31:08.497Z","type":"decision"}`},
		{ConflictEvent{Reason: "r", Heads: []string{"0123456789abcdef"}, Instance: "Skyblock", Local: side, Cloud: []Side{cloud}},
			`{"cloud":[{"snapshot":"0123456789abcdef","host":"laptop","time":"2026-11-25T10:00:00Z","bytes":10,"files":1}],"heads":["0123456789abcdef"],"instance":"Skyblock",` +
				`"local":{"host":"desk","label":"Skyblock","time":"2026-11-25T10:00:00Z","bytes":2048,"files":3,"worlds":["World"]},"reason":"r","time":"2026-11-25T11:31:08.497Z","type":"conflict"}`},
		{progressEvent(Progress{Op: "push", Percent: 12.5, BytesDone: 1, BytesTotal: 8, FilesDone: 2, FilesTotal: 9, ETA: 90 * time.Second, CurrentFile: "saves/W/level.dat"}),
			`{"bytes_done":1,"bytes_total":8,"current_file":"saves/W/level.dat","eta_seconds":90,"files_done":2,"files_total":9,"op":"push","percent":12.5,"time":"2026-11-25T11:31:08.497Z","type":"progress"}`},
		{WarningEvent{Message: "careful"},
			`{"message":"careful","time":"2026-11-25T11:31:08.497Z","type":"warning"}`},
		{DoneEvent{Action: "pushed", Snapshot: "0123456789abcdef", Message: "pushed snapshot 01234567"},
			`{"action":"pushed","message":"pushed snapshot 01234567","snapshot":"0123456789abcdef","time":"2026-11-25T11:31:08.497Z","type":"done"}`},
		{DoneEvent{Action: "restored", Snapshot: "0123456789abcdef", Message: "m", Safety: "fedcba9876543210"},
			`{"action":"restored","message":"m","safety":"fedcba9876543210","snapshot":"0123456789abcdef","time":"2026-11-25T11:31:08.497Z","type":"done"}`},
		{ErrorEvent{Message: "cancelled by the player", ExitCode: 3, Cancelled: true},
			`{"cancelled":true,"exit_code":3,"message":"cancelled by the player","time":"2026-11-25T11:31:08.497Z","type":"error"}`},
		{ErrorEvent{Message: "boom", ExitCode: 1},
			`{"exit_code":1,"message":"boom","time":"2026-11-25T11:31:08.497Z","type":"error"}`},
	} {
		b, err := MarshalEvent(tt.e, at)
		if err != nil || string(b) != tt.want {
			t.Errorf("%T:\n got %s (%v)\nwant %s", tt.e, b, err, tt.want)
		}
	}
}
