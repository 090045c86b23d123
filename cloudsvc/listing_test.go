package cloudsvc

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestListingDuringUploads: rest-server lists a folder with ReadDir and then
// stats each entry, so an upload's temporary file renamed in between turns
// the whole listing into a 404, which restic and instance-sync read as "no
// repository" or "no snapshots". cloud-svc never answers a listing of an
// existing repository with 404.
func TestListingDuringUploads(t *testing.T) {
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), nil)
	p := ts.createAccount("lena")
	ts.mustClient(p, "inst", "init")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: time.Minute}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				body := make([]byte, 512)
				rand.Read(body)
				sum := sha256.Sum256(body)
				req, _ := http.NewRequest("POST", ts.pub+"/lena/inst/snapshots/"+hex.EncodeToString(sum[:]), strings.NewReader(string(body)))
				req.SetBasicAuth(p.user, p.password)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	codes := map[int]int{}
	deadline := time.Now().Add(8 * time.Second)
	for n := 0; n < 3000 && time.Now().Before(deadline); n++ {
		req, _ := http.NewRequest("GET", ts.pub+"/lena/inst/snapshots/", nil)
		req.Header.Set("Accept", "application/vnd.x.restic.rest.v2")
		req.SetBasicAuth(p.user, p.password)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	close(stop)
	wg.Wait()
	if len(codes) != 1 || codes[http.StatusOK] == 0 {
		t.Errorf("listing answers during uploads: %s", fmt.Sprint(codes))
	}
}
