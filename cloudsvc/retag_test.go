package cloudsvc

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func push(id string, bases ...string) snapshot {
	tags := []string{"isync:v1", "kind:push"}
	for _, b := range bases {
		tags = append(tags, "base:"+b)
	}
	return snapshot{ID: id, Tags: tags}
}

func TestRetagPlan(t *testing.T) {
	set := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	safety := snapshot{ID: "s", Tags: []string{"isync:v1", "kind:safety", "base:c"}}
	retagged := push("e2", "d")
	retagged.Original = "e"
	for _, tt := range []struct {
		name    string
		snaps   []snapshot
		removed map[string]bool
		want    []retag
	}{
		{"nothing removed", []snapshot{push("a"), push("b", "a")}, set(), nil},
		{"chain cut: the head names the kept ancestor",
			[]snapshot{push("a"), push("b", "a"), push("c", "b"), push("d", "c"), push("e", "d")}, set("c", "d"),
			[]retag{{ID: "e", Remove: []string{"base:d"}, Add: []string{"base:b"}}}},
		{"no kept ancestor: left as it is",
			[]snapshot{push("a"), push("b", "a"), push("c", "b")}, set("a", "b"), nil},
		{"a merge whose sides were removed names both kept ancestors",
			[]snapshot{push("a"), push("x", "a"), push("y", "a"), push("m", "x", "y"), push("b", "y")}, set("x", "y"),
			[]retag{{ID: "b", Remove: []string{"base:y"}, Add: []string{"base:a"}}, {ID: "m", Remove: []string{"base:x", "base:y"}, Add: []string{"base:a"}}}},
		{"safety snapshots are re-tagged too",
			[]snapshot{push("a"), push("b", "a"), push("c", "b"), safety}, set("b", "c"),
			[]retag{{ID: "s", Remove: []string{"base:c"}, Add: []string{"base:a"}}}},
		{"a base naming a re-tagged snapshot's original is kept",
			[]snapshot{push("a"), push("d", "a"), retagged, push("f", "e")}, set(), nil},
		{"the walk goes through a re-tagged snapshot's original",
			[]snapshot{push("a"), push("d", "a"), retagged, push("f", "e")}, set("d", "e2"),
			[]retag{{ID: "f", Remove: []string{"base:e"}, Add: []string{"base:a"}}}},
		{"snapshots not written by instance-sync are left alone",
			[]snapshot{push("a"), push("b", "a"), {ID: "x", Tags: []string{"base:b"}}}, set("b"), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := retagPlan(tt.snaps, tt.removed); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("retagPlan = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRetentionRetagsKeptSnapshots: retention keeps a laptop's last sync
// (the last of its day) and the head, and removes what lies between; the
// head is re-tagged to name the laptop's last sync, so the laptop sees the
// head descend from it and no false fork appears.
func TestRetentionRetagsKeptSnapshots(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ts := startServer(t, data, func(c *Config) { c.Policy = Policy{KeepLast: 1, KeepDaily: 2} })
	hal := ts.createAccount("hal")
	ts.mustClient(hal, "r1", "init")
	src := t.TempDir()
	// The last noon: c, d and e fall on one day whatever the time of the
	// run (from now, the three minutes before midnight would put c and d
	// on the day before, and keep-daily would keep d instead of b).
	now := time.Now()
	if now = time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.Local); now.After(time.Now()) {
		now = now.AddDate(0, 0, -1)
	}
	backup := func(age time.Duration, content string, tags ...string) string {
		t.Helper()
		writeTree(t, src, map[string]string{"saves/w/level.dat": content})
		args := []string{"backup", "--json", "--host", "pc", "--time", now.Add(-age).Format("2006-01-02 15:04:05"), "--tag", strings.Join(tags, ",")}
		out, err := ts.local(hal.password, "hal", "r1", append(args, src)...)
		if err != nil {
			t.Fatalf("local backup: %v\n%s", err, out)
		}
		return snapshotIDFromBackup(t, out)
	}
	day := 24 * time.Hour
	a := backup(3*day, "a", "isync:v1", "kind:push")
	b := backup(2*day, "b", "isync:v1", "kind:push", "base:"+a) // the laptop's last sync
	c := backup(3*time.Minute, "c", "isync:v1", "kind:push", "base:"+b)
	d := backup(2*time.Minute, "d", "isync:v1", "kind:push", "base:"+c)
	e := backup(time.Minute, "e", "isync:v1", "kind:push", "base:"+d) // head

	code, _, raw := ts.adminDo("POST", "/retention", "")
	if code != http.StatusOK {
		t.Fatalf("retention = %d %s", code, raw)
	}
	var rep RetentionReport
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Errors != 0 || len(rep.Repositories) != 1 {
		t.Fatalf("retention report: %v %s", err, raw)
	}
	if r := rep.Repositories[0]; !reflect.DeepEqual(r.Retagged, []string{e}) {
		t.Fatalf("retagged %v, want the head %s (removed %v)", r.Retagged, e[:8], r.Removed)
	}
	out, err := ts.local(hal.password, "hal", "r1", "snapshots", "--json", "--no-lock")
	if err != nil {
		t.Fatal(err)
	}
	var snaps []snapshot
	if err := jsonPayload([]byte(out), &snaps); err != nil {
		t.Fatal(err)
	}
	byOriginal := map[string]snapshot{}
	for _, s := range snaps {
		o := s.Original
		if o == "" {
			o = s.ID
		}
		byOriginal[o] = s
	}
	for _, id := range []string{a, c, d} {
		if _, ok := byOriginal[id]; ok {
			t.Errorf("snapshot %s was kept, want it removed by the policy", id[:8])
		}
	}
	if _, ok := byOriginal[b]; !ok {
		t.Fatalf("the laptop's last sync %s was removed", b[:8])
	}
	head, ok := byOriginal[e]
	if !ok || head.ID == e {
		t.Fatalf("the head %s was not re-tagged: %+v", e[:8], snaps)
	}
	if base, _ := head.tag("base:"); base != b || strings.Contains(strings.Join(head.Tags, " "), "base:"+d) {
		t.Fatalf("the re-tagged head's tags are %v, want base:%s only", head.Tags, b[:8])
	}
	// A second run changes nothing: the graph is connected.
	code, _, raw = ts.adminDo("POST", "/retention", "")
	rep = RetentionReport{}
	if err := json.Unmarshal(raw, &rep); code != http.StatusOK || err != nil || rep.Errors != 0 || rep.Removed != 0 || len(rep.Repositories[0].Retagged) != 0 {
		t.Fatalf("second retention run = %d %s", code, raw)
	}
	if out, err := ts.local(hal.password, "hal", "r1", "check"); err != nil {
		t.Errorf("check after retention: %v\n%s", err, out)
	}
}
