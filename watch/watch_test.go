package watch

import (
	"errors"
	"testing"
)

func TestReplyRoundTrip(t *testing.T) {
	b := Base{Last: "3f2a", Digest: "9c1d", Scope: "77ab"}
	got, err := parseReply(reply(b, false))
	if err != nil || got != b {
		t.Fatalf("parseReply(reply(clean)) = %+v, %v", got, err)
	}
	if _, err := parseReply(reply(b, true)); !errors.Is(err, ErrChanged) {
		t.Fatalf("parseReply(reply(changed)) = %v, want ErrChanged", err)
	}
	for _, bad := range []string{"", "clean\n", "clean\ta\n", "dirty\n", "clean\ta\tb\n", "clean\ta\tb\tc\td\n"} {
		if _, err := parseReply(bad); err == nil || errors.Is(err, ErrChanged) {
			t.Errorf("parseReply(%q) = %v, want an error", bad, err)
		}
	}
}

func TestSocketNamePerFolder(t *testing.T) {
	if socketName("/a/minecraft") == socketName("/b/minecraft") {
		t.Fatal("two folders share a socket name")
	}
	a := "/a/minecraft"
	if n := socketName(a); n != socketName(a) || len(n) > 107 {
		t.Fatalf("socket name %q is not stable or too long", n)
	}
}
