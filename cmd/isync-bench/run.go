package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// bench holds what every measurement needs.
type bench struct {
	srv       *testserver.Server
	tmp       string
	bin       string // the built instance-sync binary
	restic    string
	url       string        // rest-server base URL, or the delay proxy's in front of it
	serverURL string        // the rest-server's own URL
	rtt       time.Duration // the round trip the delay proxy adds; 0 = plain loopback
	user      string
	password  string
	tokenFile string
	env       []string // the environment both tools start from
	runs      int
	verbose   bool
	keep      bool            // keep the generated instances
	figures   map[string]bool // the figure groups to take (-figures); nil: all

	traceMu sync.Mutex
	traced  []string // requests since the last command started, with -trace
	tracing bool
	since   time.Time
}

// traceRequests records every request the server gets.
func (b *bench) traceRequests() {
	b.tracing = true
	b.srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		who := "restic"
		if strings.HasPrefix(r.UserAgent(), "instance-sync") {
			who = "instance-sync"
		}
		b.traceMu.Lock()
		b.traced = append(b.traced, fmt.Sprintf("%7.1f ms  %-13s %s %s", ms(time.Since(b.since)), who, r.Method, r.URL.Path))
		b.traceMu.Unlock()
		return false
	})
}

// command runs one program to completion and returns its wall time, from
// before the process starts until it has exited.
func (b *bench) command(dir string, extraEnv []string, name string, args ...string) (time.Duration, []byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), b.env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	b.traceMu.Lock()
	b.traced = nil
	b.since = time.Now()
	b.traceMu.Unlock()
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if b.verbose {
		fmt.Fprintf(os.Stderr, "  %6.0f ms  %s %s\n", ms(d), filepath.Base(name), strings.Join(args, " "))
		b.traceMu.Lock()
		if b.tracing {
			fmt.Fprintf(os.Stderr, "%s", strings.Join(append(b.traced, ""), "\n"))
		}
		b.traceMu.Unlock()
	}
	if err != nil {
		return d, out.Bytes(), fmt.Errorf("%s %s: %v: %s%s", filepath.Base(name), strings.Join(args, " "), err, lastLines(errb.String()), lastLines(out.String()))
	}
	return d, out.Bytes(), nil
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// settle waits until the change watcher a pull started for pack has
// walked the instance and answers (or has ended): the walk runs while the
// game starts, and must not share the CPU with the next timed command.
func (b *bench) settle(pack string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(watch.Pids(pack)) == 0 {
			return nil
		}
		if _, err := watch.Query(pack, watch.Ping, time.Second); err == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("the change watcher of %s neither answered nor ended in 30s", pack)
}

// isync runs the instance-sync binary the way a launcher hook does.
func (b *bench) isync(extraEnv []string, args ...string) (time.Duration, error) {
	d, _, err := b.command(b.tmp, extraEnv, b.bin, args...)
	return d, err
}

// repo is the restic repository URL of a repository name in the account.
func (b *bench) repo(name string) string {
	return "rest:" + b.url + "/" + b.user + "/" + name + "/"
}

// secrets reach raw restic only through the environment.
func (b *bench) secrets() []string {
	return []string{"RESTIC_PASSWORD=" + b.password, "RESTIC_REST_USERNAME=" + b.user, "RESTIC_REST_PASSWORD=" + b.password}
}

// raw runs restic itself against repository name, from dir.
func (b *bench) raw(dir, name string, args ...string) (time.Duration, []byte, error) {
	full := append([]string{"--repo", b.repo(name)}, args...)
	return b.command(dir, b.secrets(), b.restic, full...)
}

// rawBackup backs up the scope roots of pack and returns the snapshot id.
func (b *bench) rawBackup(pack, name, parent string) (time.Duration, string, error) {
	args := []string{"backup", "--json", "--host", "bench-raw"}
	args = append(args, rawExcludes...)
	if parent != "" {
		args = append(args, "--parent", parent)
	}
	args = append(args, presentRoots(pack)...)
	d, out, err := b.raw(pack, name, args...)
	if err != nil {
		return d, "", err
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		var s struct {
			Type string `json:"message_type"`
			ID   string `json:"snapshot_id"`
		}
		if json.Unmarshal([]byte(line), &s) == nil && s.Type == "summary" {
			return d, s.ID, nil
		}
	}
	return d, "", fmt.Errorf("restic backup printed no summary")
}

func presentRoots(pack string) []string {
	var out []string
	for _, r := range scopeRoots {
		if _, err := os.Lstat(filepath.Join(pack, r)); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// instanceID reads an instance's id from its sync.json.
func instanceID(pack string) (string, error) {
	var c struct {
		ID string `json:"instance_id"`
	}
	data, err := os.ReadFile(filepath.Join(pack, ".cloud-sync", "sync.json"))
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	return c.ID, err
}

// lastSnapshot reads the snapshot an instance last synced with.
func lastSnapshot(pack string) (string, error) {
	var s struct {
		Last string `json:"last_snapshot"`
	}
	data, err := os.ReadFile(filepath.Join(pack, ".cloud-sync", "state.json"))
	if err == nil {
		err = json.Unmarshal(data, &s)
	}
	if err == nil && s.Last == "" {
		err = fmt.Errorf("%s has no last snapshot", pack)
	}
	return s.Last, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// netName tells the network in folder and repository names.
func (b *bench) netName() string {
	if b.rtt == 0 {
		return ""
	}
	return fmt.Sprintf("-rtt%dms", b.rtt.Milliseconds())
}

// want reports whether the figure group name is to be taken.
func (b *bench) want(name string) bool { return b.figures == nil || b.figures[name] }
