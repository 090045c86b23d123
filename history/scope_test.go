package history

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestScopeTagRoundTrip(t *testing.T) {
	sc := Scope{Include: []string{"saves/", "options.txt"}, Exclude: []string{"saves/World Two/", "*.tmp"}, Packwiz: []string{"resourcepacks/Pack.zip"}}
	tag := ScopeTag(sc)
	if strings.ContainsAny(tag, ", ") {
		t.Fatalf("restic would split or mangle tag %q", tag)
	}
	got := FromTags(Snapshot{}, []string{TagMarker, "kind:push", tag})
	if got.Scope == nil || !reflect.DeepEqual(*got.Scope, sc) {
		t.Fatalf("got %+v, want %+v", got.Scope, sc)
	}
	// A snapshot of an earlier build, or a damaged tag: no scope.
	for _, tags := range [][]string{{TagMarker}, {TagMarker, "scope:v1:!!"}, {TagMarker, tagScope}} {
		if s := FromTags(Snapshot{}, tags); s.Scope != nil {
			t.Fatalf("%q: scope %+v", tags, s.Scope)
		}
	}
}

// A packwiz list too long for the command line is left out, and the scope
// says so (the puller then deletes nothing).
func TestScopeTagLongPackwiz(t *testing.T) {
	sc := Scope{Include: []string{"resourcepacks/"}}
	for i := range 5000 {
		sc.Packwiz = append(sc.Packwiz, fmt.Sprintf("resourcepacks/pack-%05d-%x.zip", i, i*7919))
	}
	tag := ScopeTag(sc)
	if len(tag) > maxScopeTag {
		t.Fatalf("tag is %d characters", len(tag))
	}
	got := FromTags(Snapshot{}, []string{TagMarker, tag})
	if got.Scope == nil || !got.Scope.Partial || got.Scope.Packwiz != nil || got.Scope.Include[0] != "resourcepacks/" {
		t.Fatalf("got %+v", got.Scope)
	}
}
