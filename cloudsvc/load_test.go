package cloudsvc

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadConcurrentPushes: 20 players push at once to one server; every
// repository must then pass restic check with its snapshot intact.
func TestLoadConcurrentPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	const players = 20
	const filesPerPlayer, fileSize = 8, 256 << 10 // 2 MiB of incompressible data each
	ts := startServer(t, filepath.Join(t.TempDir(), "data"), nil)

	type result struct {
		user     string
		p        player
		src      string
		duration time.Duration
		err      error
	}
	results := make([]result, players)
	for i := range results {
		user := fmt.Sprintf("player%02d", i)
		src := t.TempDir()
		files := map[string]string{}
		for f := 0; f < filesPerPlayer; f++ {
			b := make([]byte, fileSize)
			rand.Read(b)
			files[fmt.Sprintf("saves/world/region/r.%d.mca", f)] = string(b)
		}
		writeTree(t, src, files)
		results[i] = result{user: user, p: ts.createAccount(user), src: src}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			t0 := time.Now()
			if out, err := ts.client(ctx, r.p, r.user, "load", "init"); err != nil {
				r.err = fmt.Errorf("init: %v\n%s", err, out)
				return
			}
			if out, err := ts.client(ctx, r.p, r.user, "load", "backup", "--host", r.user, "--tag", "isync:v1,kind:push", r.src); err != nil {
				r.err = fmt.Errorf("backup: %v\n%s", err, out)
				return
			}
			r.duration = time.Since(t0)
		}()
	}
	wg.Wait()
	wall := time.Since(start)

	var durations []time.Duration
	for _, r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.user, r.err)
			continue
		}
		durations = append(durations, r.duration)
	}
	if t.Failed() {
		return
	}
	// Integrity after the storm: every repository checks clean (reading all
	// data) and holds exactly its one snapshot.
	checkStart := time.Now()
	for _, r := range results {
		if out, err := ts.client(ctx, r.p, r.user, "load", "check", "--read-data"); err != nil {
			t.Errorf("%s: check: %v\n%s", r.user, err, out)
		}
		out, err := ts.client(ctx, r.p, r.user, "load", "snapshots", "--json", "--no-lock")
		var snaps []snapshot
		if err != nil || jsonPayload([]byte(out), &snaps) != nil || len(snaps) != 1 || snaps[0].Hostname != r.user {
			t.Errorf("%s: snapshots: %v %s", r.user, err, out)
		}
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	total := int64(players * filesPerPlayer * fileSize)
	summary := []string{
		fmt.Sprintf("%d concurrent pushes (init+backup) of %d MiB each", players, filesPerPlayer*fileSize>>20),
		fmt.Sprintf("wall %s, %.1f MiB/s aggregate", wall.Round(time.Millisecond), float64(total)/(1<<20)/wall.Seconds()),
		fmt.Sprintf("per push min %s median %s max %s", durations[0].Round(time.Millisecond), durations[len(durations)/2].Round(time.Millisecond), durations[len(durations)-1].Round(time.Millisecond)),
		fmt.Sprintf("check --read-data of all %d repositories: %s", players, time.Since(checkStart).Round(time.Millisecond)),
	}
	t.Log("load: " + strings.Join(summary, "; "))
}
