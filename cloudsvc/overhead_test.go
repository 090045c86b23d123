package cloudsvc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestDataPlaneOverhead compares cloud-svc's data plane with the plain
// upstream rest-server on the request every pull starts with (the snapshot
// listing), the two servers measured in turn, round after round, so load
// from elsewhere on the machine falls on both alike. Opt-in:
// ISYNC_LOAD_OVERHEAD_ROUNDS=N (make load runs 5 rounds of 10s each).
func TestDataPlaneOverhead(t *testing.T) {
	rounds := loadEnvInt("ISYNC_LOAD_OVERHEAD_ROUNDS", 0)
	if rounds == 0 {
		t.Skip("set ISYNC_LOAD_OVERHEAD_ROUNDS=N to compare cloud-svc's data plane with rest-server")
	}
	per := 10 * time.Second
	if v, err := time.ParseDuration(os.Getenv("ISYNC_LOAD_OVERHEAD_PHASE")); err == nil && v > 0 {
		per = v
	}
	listers := loadEnvInt("ISYNC_LOAD_LISTERS", 4)
	restic := testRestic(t)
	cloudsvc := goBuild(t, "./cmd/cloud-svc", "cloud-svc")
	plain := goBuild(t, "./internal/cmd/plain-rest-server", "plain-rest-server")

	type server struct {
		name, url, user, password string
	}
	// plain rest-server, htpasswd with a bcrypt entry
	dir := t.TempDir()
	pw := hex.EncodeToString(randBytes(12))
	h, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("bench:"+string(h)+"\n"), 0o600)
	raddr := freeAddr(t)
	rp := startProc(t, "plain-rest-server", nil, plain, "--path", filepath.Join(dir, "repos"), "--listen", raddr, "--htpasswd-file", filepath.Join(dir, "htpasswd"))
	waitHealthyTCP(t, raddr, rp)
	rest := server{"rest-server", "http://" + raddr, "bench", pw}

	data := filepath.Join(t.TempDir(), "data")
	pub, adm := freeAddr(t), freeAddr(t)
	cp := startProc(t, "cloud-svc", nil, cloudsvc, "--data", data, "--listen", pub, "--admin-listen", adm, "--restic-binary", restic, "--retention-interval", "0")
	waitHealthy(t, "http://"+pub, cp)
	req, _ := http.NewRequest("POST", "http://"+adm+"/accounts", strings.NewReader(`{"user":"bench"}`))
	req.Header.Set("Authorization", "Bearer "+readToken(t, filepath.Join(data, "admin.token")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create account: %v %v", err, resp)
	}
	var tok struct{ Token string }
	jsonDecode(t, resp.Body, &tok)
	resp.Body.Close()
	_, cpw, _ := strings.Cut(tok.Token, ":")
	svc := server{"cloud-svc", "http://" + pub, "bench", cpw}

	// The same repository shape on both: three snapshots.
	src := t.TempDir()
	for _, s := range []server{rest, svc} {
		for i, args := range [][]string{{"init"}, {"backup", src}, {"backup", src}, {"backup", src}} {
			writeTree(t, src, map[string]string{"f.txt": fmt.Sprint(i)})
			cmd := exec.Command(restic, args...)
			cmd.Env = append(cleanEnv(), "RESTIC_REPOSITORY=rest:"+s.url+"/bench/inst/", "RESTIC_REST_USERNAME=bench",
				"RESTIC_REST_PASSWORD="+s.password, "RESTIC_PASSWORD="+s.password, "RESTIC_CACHE_DIR="+filepath.Join(dir, "cache"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: restic %v: %v\n%s", s.name, args, err, out)
			}
		}
	}

	measure := func(s server) (float64, []time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), per)
		defer cancel()
		var (
			mu  sync.Mutex
			lat []time.Duration
			wg  sync.WaitGroup
		)
		start := time.Now()
		for range listers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
				var mine []time.Duration
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/bench/inst/snapshots/", nil)
					req.Header.Set("Accept", "application/vnd.x.restic.rest.v2")
					req.SetBasicAuth(s.user, s.password)
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						break
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						mine = append(mine, time.Since(t0))
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return float64(len(lat)) / time.Since(start).Seconds(), lat
	}
	rates := map[string][]float64{}
	lats := map[string][]time.Duration{}
	for round := range rounds {
		order := []server{rest, svc}
		if round%2 == 1 {
			order = []server{svc, rest}
		}
		for _, s := range order {
			r, l := measure(s)
			rates[s.name] = append(rates[s.name], r)
			lats[s.name] = append(lats[s.name], l...)
		}
	}
	median := func(v []float64) float64 {
		v = append([]float64(nil), v...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	pct := func(l []time.Duration, p float64) time.Duration {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		return l[min(len(l)-1, int(float64(len(l))*p))].Round(10 * time.Microsecond)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| server | listings/s (median of %d rounds) | per round | p50 | p99 |\n|---|---|---|---|---|\n", rounds)
	for _, s := range []server{rest, svc} {
		var per []string
		for _, r := range rates[s.name] {
			per = append(per, fmt.Sprintf("%.0f", r))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s |\n", s.name, median(rates[s.name]), strings.Join(per, ", "), pct(lats[s.name], 0.5), pct(lats[s.name], 0.99))
	}
	ratio := median(rates[rest.name]) / median(rates[svc.name])
	fmt.Fprintf(&b, "\nrest-server / cloud-svc throughput: %.2fx (target <= 1.10x)\n", ratio)
	t.Logf("%d listing loops, %s per server per round\n%s", listers, per, b.String())
	if f := os.Getenv("ISYNC_LOAD_REPORT"); f != "" {
		if out, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(out, "%d listing loops, %s per server per round:\n\n%s\n", listers, per, b.String())
			out.Close()
		}
	}
}

func jsonDecode(t *testing.T, r io.Reader, v any) {
	t.Helper()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		t.Fatal(err)
	}
}
