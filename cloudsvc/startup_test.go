package cloudsvc

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"git.timemachine.center/timemachine/instance-sync/resticbin"
)

// recordLookups replaces the restic lookup for one test and returns the
// options of every lookup made.
func recordLookups(t *testing.T) *[]resticbin.Options {
	t.Helper()
	var calls []resticbin.Options
	old := lookupRestic
	lookupRestic = func(ctx context.Context, o resticbin.Options) (resticbin.Found, error) {
		calls = append(calls, o)
		o.NoDownload = true // whatever the test asks, never reach the network
		return resticbin.Find(ctx, o)
	}
	t.Cleanup(func() { lookupRestic = old })
	return &calls
}

// TestMainPortTakenLeavesNothing: a taken port (public or admin) ends
// cloud-svc before it looks restic up or creates a data directory.
func TestMainPortTakenLeavesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name, flag, want string
		args             []string
	}{
		{"public", "--listen", "choose another --listen", []string{"--listen", busy.Addr().String(), "--admin-listen", "127.0.0.1:0"}},
		{"admin", "--admin-listen", "choose another --admin-listen", []string{"--listen", "127.0.0.1:0", "--admin-listen", busy.Addr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := recordLookups(t)
			data := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			code := MainContext(context.Background(), append([]string{"--data", data}, tc.args...), &bytes.Buffer{}, &stderr)
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			if len(*calls) != 0 {
				t.Errorf("restic was looked up %d times before the port check", len(*calls))
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(data)
				t.Errorf("data directory left behind (%v): %v", err, entries)
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, busy.Addr().String()) || !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q: want one line naming %s and %q", msg, busy.Addr(), tc.want)
			}
		})
	}
}

// TestMainDataLockBeforeRestic: a data directory in use by another
// cloud-svc is reported before restic is looked up.
func TestMainDataLockBeforeRestic(t *testing.T) {
	calls := recordLookups(t)
	data := filepath.Join(t.TempDir(), "data")
	held, err := OpenBoltStore(filepath.Join(data, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var stderr bytes.Buffer
	code := MainContext(context.Background(), []string{"--data", data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, &bytes.Buffer{}, &stderr)
	if code != ExitError {
		t.Errorf("exit %d, want %d", code, ExitError)
	}
	if !strings.Contains(stderr.String(), "in use by another cloud-svc") {
		t.Errorf("stderr %q: want the data lock named", stderr.String())
	}
	if len(*calls) != 0 {
		t.Errorf("restic was looked up before the data lock was checked")
	}
	for _, f := range []string{"server.key", "admin.token"} {
		if _, err := os.Stat(filepath.Join(data, f)); !os.IsNotExist(err) {
			t.Errorf("%s created although the data directory is in use (%v)", f, err)
		}
	}
}

// TestMainLooksUpResticWithoutDownload: by default the server never
// downloads restic; --restic-download allows it. Without any restic the
// warning names both ways out.
func TestMainLooksUpResticWithoutDownload(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv("INSTANCE_SYNC_RESTIC", "")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(empty, "cache"))
	t.Setenv("HOME", empty)
	for _, tc := range []struct {
		args         []string
		wantDownload bool
	}{
		{nil, false},
		{[]string{"--restic-download"}, true},
	} {
		calls := recordLookups(t)
		ctx, cancel := context.WithCancel(context.Background())
		var stderr syncBuffer
		done := make(chan int, 1)
		args := append([]string{"--data", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--retention-interval", "0"}, tc.args...)
		go func() { done <- MainContext(ctx, args, &bytes.Buffer{}, &stderr) }()
		waitFor(t, &stderr, "public port on")
		cancel()
		if code := <-done; code != ExitOK {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, stderr.String())
		}
		if len(*calls) != 1 || (*calls)[0].NoDownload == tc.wantDownload {
			t.Fatalf("%v: lookups %+v, want one with download allowed=%v", tc.args, *calls, tc.wantDownload)
		}
		if !tc.wantDownload {
			out := stderr.String()
			if !strings.Contains(out, "--restic-binary") || !strings.Contains(out, "--restic-download") || strings.Contains(out, "download restic from") {
				t.Errorf("warning without both ways out, or a download was tried:\n%s", out)
			}
		}
	}
}

// waitFor waits until the server's log contains s (a start takes seconds
// on a loaded machine; the bound only ends a server that never says it).
func waitFor(t *testing.T, log *syncBuffer, s string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(log.String(), s); {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
