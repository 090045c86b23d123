package cloudsvc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runInstanceSync runs the binary with a clean environment and returns its
// combined output and exit code.
func runInstanceSync(t testing.TB, bin, restic string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, isyncArgs(restic, args...)...)
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "INST_") && !strings.HasPrefix(kv, "INSTANCE_SYNC_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "INSTANCE_SYNC_WATCH=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("instance-sync %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), code
}

// treeDigest is the SHA-256 of every file under dir (name and content),
// .cloud-sync/ left out.
func treeDigest(t testing.TB, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel == ".cloud-sync" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(filepath.ToSlash(rel) + "\x00"))
		h.Write(data)
		h.Write([]byte{0})
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

// TestInstanceSyncStorageFull: a push refused for the quota tells the
// player their storage is full with the numbers, exits 1, leaves the
// instance as it was, and the same push goes through once the quota is
// raised (nothing was lost).
func TestInstanceSyncStorageFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds instance-sync; skipped with -short")
	}
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), nil)
	bin := buildInstanceSync(t)
	code, m, raw := ts.adminDo("POST", "/accounts", `{"user":"gwen","quota":300000}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, raw)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(m["token"].(string)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	a := t.TempDir()
	writeTree(t, a, map[string]string{"saves/World/level.dat": "level data", "options.txt": "fov:90\n"})
	if out, code := runInstanceSync(t, bin, ts.restic, "init", "--url="+ts.pub, "--token-file="+tokenFile, "--pack-folder="+a); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	if out, code := runInstanceSync(t, bin, ts.restic, "push", "--pack-folder="+a); code != 0 {
		t.Fatalf("first push: exit %d\n%s", code, out)
	}

	randomFile(t, a, "saves/World/region/r.0.0.mca", 600_000)
	before := treeDigest(t, a)
	out, code := runInstanceSync(t, bin, ts.restic, "push", "--pack-folder="+a)
	if code != 1 {
		t.Errorf("push past the quota: exit %d, want 1\n%s", code, out)
	}
	var st Storage
	_, body := ts.publicGet(player{"gwen", strings.TrimPrefix(m["token"].(string), "gwen:")}, "/gwen/.storage")
	json.Unmarshal(body, &st)
	want := "your cloud storage is full: " + FormatSize(st.Used) + " of 300.0 kB; ask your server's admins"
	if !strings.Contains(out, want) {
		t.Errorf("push output lacks %q:\n%s", want, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "instance-sync:") && strings.Contains(line, "unexpected HTTP response") {
			t.Errorf("the error is restic's raw HTTP error: %s", line)
		}
	}
	if after := treeDigest(t, a); after != before {
		t.Errorf("the refused push changed the instance")
	}

	if code, _, raw := ts.adminDo("PUT", "/accounts/gwen/quota", `{"bytes":10000000}`); code != http.StatusOK {
		t.Fatalf("raise quota: %d %s", code, raw)
	}
	if out, code := runInstanceSync(t, bin, ts.restic, "push", "--pack-folder="+a); code != 0 || !strings.Contains(out, "pushed") {
		t.Fatalf("push after raising the quota: exit %d\n%s", code, out)
	}
	var cfg struct {
		InstanceID string `json:"instance_id"`
	}
	data, _ := os.ReadFile(filepath.Join(a, ".cloud-sync", "sync.json"))
	json.Unmarshal(data, &cfg)
	b := t.TempDir()
	if out, code := runInstanceSync(t, bin, ts.restic, "init", "--url="+ts.pub, "--token-file="+tokenFile, "--pack-folder="+b, "--join="+cfg.InstanceID); code != 0 {
		t.Fatalf("init second folder: exit %d\n%s", code, out)
	}
	if out, code := runInstanceSync(t, bin, ts.restic, "pull", "--pack-folder="+b); code != 0 {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
	if treeDigest(t, b) != before {
		t.Errorf("the second folder does not hold what the first pushed")
	}
}
