package testserver

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Close returns only after the requests being handled have ended: a test
// removes the data folder right after, and a late upload would write into
// it ("directory not empty").
func TestCloseWaitsForRequests(t *testing.T) {
	s, err := Start(t.TempDir(), "", map[string]string{"alice": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		close(entered)
		<-release // a held upload: its body is not read
		finished.Store(true)
		http.Error(w, "held", http.StatusServiceUnavailable)
		return true
	})
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/alice/data/00", strings.NewReader(strings.Repeat("x", 1<<20)))
		req.SetBasicAuth("alice", "pw")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the request never reached the server")
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		close(release)
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned while a request was still being handled")
	}
	// After Close nothing new is handled.
	if resp, err := http.Get(s.URL + "/alice/config"); err == nil {
		resp.Body.Close()
		t.Fatalf("a request after Close was answered: %s", resp.Status)
	}
}
