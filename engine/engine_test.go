package engine

import (
	"testing"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/scope"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// TestLabel: the flag, then $INST_NAME, then $INST_ID, then the label
// given at init, then the first 8 characters of the id.
func TestLabel(t *testing.T) {
	const id = "01JD5ZQ8X3KTV6W0C7M1N2P3R4"
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tt := range []struct {
		flag  string
		env   func(string) string
		saved string
		id    string
		want  string
	}{
		{"Flag", env("INST_NAME", "Name", "INST_ID", "Id"), "Saved", id, "Flag"},
		{"", env("INST_NAME", "Name", "INST_ID", "Id"), "Saved", id, "Name"},
		{"", env("INST_ID", "Id"), "Saved", id, "Id"},
		{"", env(), "Saved", id, "Saved"},
		{"", env(), "", id, "01JD5ZQ8"},
		{"", env(), "", "short", "short"},
	} {
		if got := Label(tt.flag, tt.env, tt.saved, tt.id); got != tt.want {
			t.Errorf("Label(%q, env, %q, %q) = %q, want %q", tt.flag, tt.saved, tt.id, got, tt.want)
		}
	}
}

// TestWatchBase: a watcher may vouch for the files only against a state a
// no-op push can trust; anything pending means the push walks.
func TestWatchBase(t *testing.T) {
	sc := scope.New(scope.Overrides{})
	synced := func() *instance.State {
		return &instance.State{Last: "aaaa1111", ManifestDigest: "d1"}
	}
	b, ok := watchBase(synced(), sc)
	if want := (watch.Base{Last: "aaaa1111", Digest: "d1", Scope: sc.Fingerprint()}); !ok || b != want {
		t.Fatalf("synced state: %+v, %v; want %+v, true", b, ok, want)
	}
	for name, change := range map[string]func(*instance.State){
		"never synced":       func(st *instance.State) { st.Last = "" },
		"no manifest digest": func(st *instance.State) { st.ManifestDigest = "" },
		"restore pending":    func(st *instance.State) { st.Restoring = "bbbb2222" },
		"push pending":       func(st *instance.State) { st.PendingPush = "attempt" },
		"heads skipped":      func(st *instance.State) { st.Skipped = []string{"cccc3333"} },
	} {
		st := synced()
		change(st)
		if b, ok := watchBase(st, sc); ok {
			t.Errorf("%s: watchBase = %+v, true; want no base", name, b)
		}
	}
	// The scope is part of the base: an edited scope.json is another base.
	other := scope.New(scope.Overrides{Exclude: []string{"saves/Big/"}})
	if b, _ := watchBase(synced(), other); b.Scope == sc.Fingerprint() {
		t.Error("two scopes give the same watch base")
	}
}

// TestLocalChanged: the pull's "changed here" input. Never synced: any
// file is a change; synced: the digest decides, else the manifest.
func TestLocalChanged(t *testing.T) {
	m := scope.Manifest{"saves/World/level.dat": {Size: 5, MTime: 1, Mode: 0o644}}
	other := scope.Manifest{"saves/World/level.dat": {Size: 6, MTime: 2, Mode: 0o644}}
	withDigest := func(last scope.Manifest) instance.State {
		var st instance.State
		st.SetManifest(last)
		return st
	}
	inline := func(last scope.Manifest) instance.State {
		return instance.State{Manifest: last}
	}
	for _, tt := range []struct {
		name  string
		state instance.State
		cur   scope.Manifest
		want  bool
	}{
		{"never synced, nothing here", instance.State{}, scope.Manifest{}, false},
		{"never synced, files here", instance.State{}, m, true},
		{"same digest", withDigest(m), m, false},
		{"other digest", withDigest(m), other, true},
		{"manifest, same files", inline(m), m, false},
		{"manifest, other files", inline(m), other, true},
	} {
		s := &session{state: tt.state}
		if got := s.localChanged(len(tt.cur), tt.cur.Digest()); got != tt.want {
			t.Errorf("%s: localChanged = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAdoptPending: a push killed after restic saved its snapshot finds
// that snapshot (by its attempt id) at the next pull and takes it as the
// last sync, so it is never mistaken for another computer's head.
func TestAdoptPending(t *testing.T) {
	g := history.Graph{
		"mine1111": {ID: "mine1111", Kind: history.KindPush, Attempt: "try-1"},
		"else2222": {ID: "else2222", Kind: history.KindPush, Attempt: "try-2"},
	}
	s := &session{state: instance.State{Last: "old00000", PendingPush: "try-1", Skipped: []string{"x"}}}
	s.adoptPending(g)
	if st := s.state; st.Last != "mine1111" || st.PendingPush != "" || st.Skipped != nil {
		t.Fatalf("after adoptPending: last %q, pending %q, skipped %v; want mine1111, none, none", st.Last, st.PendingPush, st.Skipped)
	}
	s = &session{state: instance.State{Last: "old00000", PendingPush: "try-9"}}
	s.adoptPending(g)
	if st := s.state; st.Last != "old00000" || st.PendingPush != "try-9" {
		t.Fatalf("no snapshot of the attempt: last %q, pending %q; want them unchanged", st.Last, st.PendingPush)
	}
}
