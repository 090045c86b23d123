package cloudsvc

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/internal/testenv"
)

// TestInstanceSyncCLI drives the player's binary against cloud-svc: provision
// an account, init + push from one folder, init --join + pull into another,
// and the files match.
func TestInstanceSyncCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds instance-sync; skipped with -short")
	}
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), nil)
	root := testenv.ModuleRoot()
	bin := filepath.Join(t.TempDir(), "instance-sync")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, "./cmd/instance-sync")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/instance-sync: %v\n%s", err, out)
	}

	code, m, raw := ts.adminDo("POST", "/accounts", `{"user":"frank"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, raw)
	}
	token, url := m["token"].(string), m["url"].(string)
	if url != ts.pub {
		t.Fatalf("url %q, want %q", url, ts.pub)
	}

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, isyncArgs(ts.restic, args...)...)
		var env []string
		for _, kv := range cleanEnv() {
			if !strings.HasPrefix(kv, "INST_") && !strings.HasPrefix(kv, "INSTANCE_SYNC_") {
				env = append(env, kv)
			}
		}
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("instance-sync %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}

	a, b := t.TempDir(), t.TempDir()
	files := map[string]string{
		"saves/World/level.dat":          "level data",
		"saves/World/region/r.0.0.mca":   strings.Repeat("chunk", 1000),
		"options.txt":                    "fov:90\n",
		"screenshots/2025-01-01_00.png":  "png",
		"mods/not-synced.jar":            "mod",
		"saves/World/session.lock":       "lock",
		"logs/latest.log":                "log",
		"resourcepacks/pack/pack.mcmeta": "{}",
	}
	writeTree(t, a, files)
	run("init", "--url="+url, "--token="+token, "--pack-folder="+a)
	run("push", "--pack-folder="+a)
	var cfg struct {
		InstanceID string `json:"instance_id"`
	}
	data, err := os.ReadFile(filepath.Join(a, ".cloud-sync", "sync.json"))
	if err != nil || json.Unmarshal(data, &cfg) != nil || cfg.InstanceID == "" {
		t.Fatalf("sync.json: %v %s", err, data)
	}
	run("init", "--url="+url, "--token="+token, "--pack-folder="+b, "--join="+cfg.InstanceID)
	run("pull", "--pack-folder="+b)

	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(b, filepath.FromSlash(name)))
		synced := !strings.HasPrefix(name, "mods/") && !strings.HasPrefix(name, "logs/") && !strings.HasSuffix(name, "session.lock")
		switch {
		case synced && (err != nil || string(got) != want):
			t.Errorf("%s in the second folder: %q, %v", name, got, err)
		case !synced && err == nil:
			t.Errorf("%s is out of scope but was pulled", name)
		}
	}

	// The setup picker sees the instance.
	code, body := ts.publicGet(player{"frank", strings.TrimPrefix(token, "frank:")}, "/frank/")
	if code != 200 || !strings.Contains(string(body), cfg.InstanceID) {
		t.Errorf("GET /frank/ = %d %s", code, body)
	}
}
