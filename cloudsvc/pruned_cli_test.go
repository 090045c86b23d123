package cloudsvc

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

// buildInstanceSync builds the player's binary for a test.
func buildInstanceSync(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "instance-sync")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, "./cmd/instance-sync")
	build.Dir = testenv.ModuleRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/instance-sync: %v\n%s", err, out)
	}
	return bin
}

// TestPrunedHistoryIsNotAConflict: a laptop synced and did not play; the
// desktop pushed many times; retention (keep-last 3) removed the laptop's
// last sync and everything between. The laptop's next pull takes the
// desktop's version without a conflict, after keeping its own version in
// a safety snapshot. A laptop that did play gets the conflict.
func TestPrunedHistoryIsNotAConflict(t *testing.T) {
	if testing.Short() {
		t.Skip("builds instance-sync; skipped with -short")
	}
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), func(c *Config) { c.Policy = Policy{KeepLast: 3} })
	bin := buildInstanceSync(t)
	code, m, raw := ts.adminDo("POST", "/accounts", `{"user":"gina"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, raw)
	}
	token, url := m["token"].(string), m["url"].(string)
	password := strings.TrimPrefix(token, "gina:")
	home := t.TempDir()
	run := func(pack string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, isyncArgs(ts.restic, append(args, "--pack-folder="+pack)...)...)
		var env []string
		for _, kv := range cleanEnv() {
			if !strings.HasPrefix(kv, "INST_") && !strings.HasPrefix(kv, "INSTANCE_SYNC_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	must := func(pack string, args ...string) string {
		t.Helper()
		out, code := run(pack, args...)
		if code != 0 {
			t.Fatalf("instance-sync %s: exit %d\n%s", args[0], code, out)
		}
		return out
	}
	level := func(pack string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(pack, "saves", "World", "level.dat"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	root := t.TempDir()
	laptop, player, desktop := filepath.Join(root, "laptop"), filepath.Join(root, "player"), filepath.Join(root, "desktop")
	writeTree(t, laptop, map[string]string{"saves/World/level.dat": "v0 from the laptop"})
	must(laptop, "init", "--url="+url, "--token="+token)
	must(laptop, "push")
	var cfg struct {
		InstanceID string `json:"instance_id"`
	}
	data, err := os.ReadFile(filepath.Join(laptop, ".cloud-sync", "sync.json"))
	if err != nil || json.Unmarshal(data, &cfg) != nil {
		t.Fatalf("sync.json: %v %s", err, data)
	}
	for _, pack := range []string{desktop, player} {
		if err := os.MkdirAll(pack, 0o755); err != nil {
			t.Fatal(err)
		}
		must(pack, "init", "--url="+url, "--token="+token, "--join="+cfg.InstanceID)
		must(pack, "pull")
	}
	// The player plays without pushing (a crash, no post-exit hook).
	writeTree(t, player, map[string]string{"saves/World/level.dat": "progress nobody pushed"})
	for i := 1; i <= 8; i++ {
		writeTree(t, desktop, map[string]string{"saves/World/level.dat": fmt.Sprintf("v%d from the desktop%s", i, strings.Repeat("!", i))})
		must(desktop, "push")
	}
	code, _, raw = ts.adminDo("POST", "/retention", "")
	var rep RetentionReport
	if code != 200 || json.Unmarshal(raw, &rep) != nil || rep.Errors != 0 || rep.Removed == 0 {
		t.Fatalf("retention = %d %s", code, raw)
	}

	out, code := run(laptop, "pull")
	if code != 0 {
		t.Fatalf("laptop pull after retention: exit %d, want 0 (it did not play)\n%s", code, out)
	}
	if got, want := level(laptop), level(desktop); got != want {
		t.Fatalf("laptop has %q, want the desktop's %q", got, want)
	}
	if !strings.Contains(out, "safety snapshot") {
		t.Fatalf("the laptop's last synced version is gone from the server, yet no safety snapshot was taken:\n%s", out)
	}
	// That version survives in the safety snapshot.
	snaps, err := ts.local(password, "gina", cfg.InstanceID, "dump", "--no-lock", "latest", "/saves/World/level.dat", "--tag", "kind:safety")
	if err != nil || snaps != "v0 from the laptop" {
		t.Fatalf("the safety snapshot holds %q (%v), want the laptop's v0", snaps, err)
	}
	out = must(laptop, "pull")
	if !strings.Contains(out, "up to date") {
		t.Fatalf("second pull:\n%s", out)
	}

	// Real local changes against the moved cloud: a conflict, nothing lost.
	out, code = run(player, "pull")
	if code != 3 {
		t.Fatalf("pull with unpushed progress after retention: exit %d, want 3 (conflict)\n%s", code, out)
	}
	if got := level(player); got != "progress nobody pushed" {
		t.Fatalf("the conflict changed the player's files: %q", got)
	}
}
