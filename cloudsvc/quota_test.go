package cloudsvc

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"git.timemachine.center/timemachine/instance-sync/internal/testpg"
)

// withPostgres points test servers at a fresh database of the shared test
// PostgreSQL; every server started with the returned function is a node of
// the same deployment.
func withPostgres(t testing.TB) func(*Config) {
	pg := testpg.Shared(t)
	dsn := pg.NewDatabase(t)
	return func(c *Config) {
		c.Store = dsn
		c.StorePassword = pg.Password
	}
}

// repoFiles lists a repository's files (without lock files, which restic
// creates and removes on its own) with their sizes.
func repoFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(p)) == "locks" {
			return nil
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %d", rel, fi.Size()))
		return nil
	})
	sort.Strings(out)
	return out
}

func randomFile(t *testing.T, dir, name string, size int) {
	t.Helper()
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7919 + size + len(name)*31 + i/251*13)
	}
	// Not compressible by zstd: mix with crypto-grade noise.
	noise := make([]byte, size)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= noise[i]
	}
	writeTree(t, dir, map[string]string{name: string(b)})
}

// TestQuotaRefusesBeforeWriting: on both stores, an upload that would pass
// the account's quota is refused with 507 before anything reaches the
// repository, the usage shows in the listing and on GET /<user>/.storage,
// and lifting the quota lets the same backup through.
func TestQuotaRefusesBeforeWriting(t *testing.T) {
	for _, store := range []string{"bbolt", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var mutate func(*Config)
			if store == "postgres" {
				mutate = withPostgres(t)
			}
			ts := startServer(t, filepath.Join(t.TempDir(), "data"), mutate)
			code, _, raw := ts.adminDo("POST", "/accounts", `{"user":"quinn","quota":400000}`)
			if code != http.StatusCreated {
				t.Fatalf("create: %d %s", code, raw)
			}
			var m map[string]any
			json.Unmarshal(raw, &m)
			user, pw, _ := strings.Cut(m["token"].(string), ":")
			p := player{user: user, password: pw}

			src := t.TempDir()
			randomFile(t, src, "small.dat", 100_000)
			ts.mustClient(p, "inst", "init")
			ts.mustClient(p, "inst", "backup", "--host", "h", src)

			repo := filepath.Join(ts.data, "repos", user, "inst")
			before := repoFiles(t, repo)
			randomFile(t, src, "big.dat", 500_000)
			out, err := ts.client(t.Context(), p, user, "inst", "backup", "--host", "h", src)
			if err == nil {
				t.Fatalf("backup past the quota succeeded:\n%s", out)
			}
			if !strings.Contains(out, "unexpected HTTP response (507)") {
				t.Errorf("restic's output does not name the 507:\n%s", out)
			}
			// Small uploads that fit (a tree pack, perhaps) may have gone
			// through; the pack that would pass the quota never reached the
			// disk, and the count is exactly what is on it.
			after := repoFiles(t, repo)
			if total := sumSizes(after); total > 400000 || total < sumSizes(before) {
				t.Errorf("%d bytes in the repository after the refusal (quota 400000):\nbefore %v\nafter  %v", total, before, after)
			}

			code, body := ts.publicGet(p, "/"+user+"/.storage")
			var st Storage
			if code != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Quota != 400000 || st.Used <= 100_000 || st.Used > 400000 {
				t.Fatalf(".storage: %d %s", code, body)
			}
			if st.Used != sumSizes(after) {
				t.Errorf("usage counts %d bytes, the repository holds %d", st.Used, sumSizes(after))
			}
			code, _, raw = ts.adminDo("GET", "/accounts", "")
			var list []AccountInfo
			if code != http.StatusOK || json.Unmarshal(raw, &list) != nil || len(list) != 1 || list[0].Quota != 400000 || list[0].Used != st.Used || list[0].Bytes <= 100_000 {
				t.Fatalf("listing: %d %s", code, raw)
			}
			// Restores still work on a full account (lock files are exempt).
			ts.mustClient(p, "inst", "restore", "latest", "--target", t.TempDir())

			code, _, raw = ts.adminDo("PUT", "/accounts/"+user+"/quota", `{"bytes":-1}`)
			if code != http.StatusOK {
				t.Fatalf("lift quota: %d %s", code, raw)
			}
			ts.mustClient(p, "inst", "backup", "--host", "h", src)
			ts.mustClient(p, "inst", "check")
			code, body = ts.publicGet(p, "/"+user+"/.storage")
			if json.Unmarshal(body, &st) != nil || st.Quota != 0 || st.Used < 600_000 {
				t.Fatalf(".storage after lifting: %d %s", code, body)
			}
		})
	}
}

// TestQuotaDefaultAndBadInput: the server default applies to accounts
// without their own; bad quota bodies are refused with a clear 400.
func TestQuotaDefaultAndBadInput(t *testing.T) {
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), func(c *Config) { c.DefaultQuota = 1000 })
	p := ts.createAccount("dora")
	code, body := ts.publicGet(p, "/dora/.storage")
	if code != http.StatusOK || !strings.Contains(string(body), `"quota_bytes":1000`) {
		t.Fatalf(".storage: %d %s", code, body)
	}
	for _, bad := range []string{`{}`, `{"bytes":-5}`, `{"bytes":"x"}`, `{"bytes":1.5}`, `{"quota":1}`} {
		if code, _, raw := ts.adminDo("PUT", "/accounts/dora/quota", bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, raw)
		}
	}
	if code, _, _ := ts.adminDo("PUT", "/accounts/nobody/quota", `{"bytes":5}`); code != http.StatusNotFound {
		t.Errorf("unknown account: %d", code)
	}
	if code, _, _ := ts.adminDo("POST", "/accounts", `{"user":"ed","quota":-2}`); code != http.StatusBadRequest {
		t.Errorf("create with quota -2: %d", code)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "10GB": 10e9, "10 gb": 10e9, "500MiB": 500 << 20, "1.5kB": 1500, "7": 7} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ten", "-1GB", "5XB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	if got := StorageFullMessage(10e9, 10e9); got != "your cloud storage is full: 10.0 GB of 10.0 GB; ask your server's admins" {
		t.Errorf("message %q", got)
	}
	for n, want := range map[int64]string{999: "999 B", 1000: "1.0 kB", 999_949: "999.9 kB", 999_950: "1.0 MB", 1_500_000_000: "1.5 GB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func sumSizes(files []string) int64 {
	var total int64
	for _, f := range files {
		var n int64
		fmt.Sscan(f[strings.LastIndexByte(f, ' ')+1:], &n)
		total += n
	}
	return total
}

// TestRetentionRecountsUsage: whatever the counter drifted to (a node killed
// between a reservation and its give-back), retention sets it from the disk.
func TestRetentionRecountsUsage(t *testing.T) {
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), nil)
	p := ts.createAccount("rhea")
	src := t.TempDir()
	randomFile(t, src, "a.dat", 50_000)
	ts.mustClient(p, "inst", "init")
	ts.mustClient(p, "inst", "backup", "--host", "h", src)
	if err := ts.svc.store.SetUsage("rhea", 999_999_999); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.svc.RunRetention(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := sumSizes(repoFiles(t, filepath.Join(ts.data, "repos", "rhea", "inst")))
	if got, err := ts.svc.store.Usage("rhea"); err != nil || got != want {
		t.Fatalf("usage after retention %d (%v), the disk holds %d", got, err, want)
	}
}
