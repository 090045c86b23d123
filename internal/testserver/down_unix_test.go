//go:build unix

package testserver

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/internal/testport"
)

// A server that is down refuses connections, also right after it served
// some (their TIME_WAIT stays on its port), and keeps its port taken
// until Close gives it back: a script's "server down" expects "connection
// refused", never another test's server on the same port.
func TestDownRefusesAndKeepsThePort(t *testing.T) {
	busy, err := Start(t.TempDir(), "", map[string]string{"alice": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	resp, err := http.Get(busy.URL + "/alice/config")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := busy.Down(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(busy.URL + "/alice/config"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("GET from a server that is down: %v, want connection refused", err)
	}

	// Without connections (no TIME_WAIT), only Down's hold keeps the port.
	idle, err := Start(t.TempDir(), "", map[string]string{"alice": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.Down(); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(idle.URL, "http://")
	if ln, err := testport.ListenPlain(addr); err == nil {
		ln.Close()
		t.Fatal("the port of a server that is down was free to take")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := testport.ListenPlain(addr)
	if err != nil {
		t.Fatalf("Close did not give the port back: %v", err)
	}
	ln.Close()
}
