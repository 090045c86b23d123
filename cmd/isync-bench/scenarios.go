package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"git.timemachine.center/timemachine/instance-sync/watch"
)

// pair runs a baseline and ours once each, alternating which goes first
// so neither always inherits a warmer cache.
func pair(i int, base, ours func() error) error {
	if i%2 == 0 {
		if err := base(); err != nil {
			return err
		}
		return ours()
	}
	if err := ours(); err != nil {
		return err
	}
	return base()
}

func (b *bench) progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "isync-bench: "+format+"\n", a...)
}

// size measures every figure on one generated instance.
func (b *bench) size(sh shape) (sizeResult, error) {
	res := sizeResult{Shape: sh, RTT: b.rtt}
	key := sh.Name + b.netName()
	dir := filepath.Join(b.tmp, key)
	if !b.keep {
		defer os.RemoveAll(dir)
	}
	a, err := b.makeInstance(dir, sh, &res)
	if err != nil {
		return res, err
	}
	g := func(pack string, args ...string) []string {
		return append(args, "--pack-folder="+pack, "-g", "--no-download")
	}
	initArgs := func(pack string, extra ...string) []string {
		return append([]string{"init", "--url=" + b.url, "--token-file=" + b.tokenFile, "--pack-folder=" + pack}, extra...)
	}
	serverRepo := func(name string) string { return filepath.Join(b.tmp, "server", b.user, name) }

	// 3. First push: a fresh repository each run, for both.
	var ourRepo, rawRepo string
	if !b.want("first") {
		// One push, untimed, makes the repository the other figures use.
		if _, err := b.isync(nil, initArgs(a, "--force")...); err != nil {
			return res, err
		}
		if _, err := b.isync(nil, g(a, "push")...); err != nil {
			return res, err
		}
		if ourRepo, err = instanceID(a); err != nil {
			return res, err
		}
	} else {
		b.progress("%s: first push", sh.Name)
		first := figure{Name: "first push", Baseline: "`restic init` + `restic backup` of the same files (fresh repository each)", Slower: true, Goal: 1.05}
		var backupOnly []time.Duration
		for i := range b.runs {
			if _, err := b.isync(nil, initArgs(a, "--force")...); err != nil {
				return res, err
			}
			id, err := instanceID(a)
			if err != nil {
				return res, err
			}
			rawName := fmt.Sprintf("%s-raw-first-%d", key, i)
			err = pair(i, func() error {
				di, _, err := b.raw(a, rawName, "init")
				if err != nil {
					return err
				}
				db, _, err := b.rawBackup(a, rawName, "")
				first.Base = append(first.Base, di+db)
				backupOnly = append(backupOnly, db)
				return err
			}, func() error {
				d, err := b.isync(nil, g(a, "push")...)
				first.Ours = append(first.Ours, d)
				return err
			})
			if err != nil {
				return res, err
			}
			// Only the last pair of repositories is kept: the disk holds
			// one copy of the large instance per repository.
			if ourRepo != "" {
				os.RemoveAll(serverRepo(ourRepo))
				os.RemoveAll(serverRepo(rawRepo))
			}
			ourRepo, rawRepo = id, rawName
		}
		first.Note = fmt.Sprintf("`restic backup` alone: median %.0f ms (ratio %.2f×)", ms(median(backupOnly)), ratioOf(median(first.Ours), median(backupOnly)))
		res.Figures = append(res.Figures, first)
	}

	// 1 and 2. No-op pull and push against one `restic snapshots`, in the
	// launcher's cycle: the pre-launch pull (after the last push, so it
	// starts a change watcher), the game (here: until the watcher is
	// ready), the post-exit push (which asks the watcher). The push alone,
	// without a watcher, is an information row.
	snapshots := func(f *figure) func() error {
		return func() error {
			d, _, err := b.raw(a, ourRepo, "snapshots", "--no-lock", "--json")
			f.Base = append(f.Base, d)
			return err
		}
	}
	if b.want("noop") {
		b.progress("%s: no-op pull and push", sh.Name)
		// Through a network a no-op pull costs its round trips, which restic
		// pays too: "times faster" says nothing there, the round trips do.
		pull := figure{Name: "no-op pull", Baseline: "one `restic snapshots --no-lock --json` on the same repository", Goal: 20, MaxRTT: 2.5}
		push := figure{Name: "no-op push", Baseline: pull.Baseline, Goal: 20}
		walked := figure{Name: "no-op push, no watcher", Baseline: pull.Baseline}
		// timed runs ours, then (untimed) lets a watcher it started finish
		// its walk before the baseline runs.
		timed := func(f *figure, args ...string) func() error {
			return func() error {
				d, err := b.isync(nil, args...)
				f.Ours = append(f.Ours, d)
				if err != nil {
					return err
				}
				return b.settle(a)
			}
		}
		// One unmeasured cycle warms the page cache.
		for _, op := range []string{"push", "pull"} {
			if _, err := b.isync(nil, g(a, op)...); err != nil {
				return res, err
			}
		}
		if err := b.settle(a); err != nil {
			return res, err
		}
		if err := snapshots(&figure{})(); err != nil {
			return res, err
		}
		for i := range b.runs {
			if _, err := b.isync(nil, g(a, "push")...); err != nil { // ends the watcher
				return res, err
			}
			if err := pair(i, snapshots(&pull), timed(&pull, g(a, "pull")...)); err != nil {
				return res, err
			}
			if err := pair(i, snapshots(&push), timed(&push, g(a, "push")...)); err != nil {
				return res, err
			}
		}
		if err := b.settle(a); err != nil {
			return res, err
		}
		for i := range b.runs {
			// No pull before: no watcher, so the push stats every file.
			if err := pair(i, snapshots(&walked), timed(&walked, g(a, "push")...)); err != nil {
				return res, err
			}
		}
		stat, err := b.statFigure(a, dir)
		if err != nil {
			return res, err
		}
		res.Figures = append(res.Figures, pull, push, walked, stat)
	}

	// 4. Changed pull: another computer played one world and pushed.
	other := filepath.Join(dir, "b", "minecraft")
	hostB := []string{"INSTANCE_SYNC_HOSTNAME=computer-b"}
	otherReady := false // the second computer is set up
	if b.want("changed") {
		b.progress("%s: changed pull (setting up the second computer)", sh.Name)
		if err := os.MkdirAll(other, 0o755); err != nil {
			return res, err
		}
		if _, err := b.isync(hostB, initArgs(other, "--join="+ourRepo)...); err != nil {
			return res, err
		}
		if _, err := b.isync(hostB, g(other, "pull")...); err != nil {
			return res, err
		}
		otherReady = true
		prev, err := lastSnapshot(a)
		if err != nil {
			return res, err
		}
		rawAlways := filepath.Join(dir, "raw-always", "minecraft")
		rawIfChanged := filepath.Join(dir, "raw-if-changed", "minecraft")
		for _, t := range []string{rawAlways, rawIfChanged} {
			if _, _, err := b.raw(dir, ourRepo, "restore", prev, "--target", t); err != nil {
				return res, err
			}
		}
		changed := figure{Name: "changed pull", Slower: true, Goal: 1.05,
			Baseline: "`restic restore SNAPSHOT --target DIR --overwrite if-changed`, DIR holding the previous version"}
		always := figure{Name: "changed pull (info)", Slower: true,
			Baseline: "`restic restore SNAPSHOT --target DIR` (default `--overwrite always`, which reads every file), DIR holding the previous version"}
		for i := range b.runs {
			if err := playWorld(other, "World 1", uint64(100+i)); err != nil {
				return res, err
			}
			if _, err := b.isync(hostB, g(other, "push")...); err != nil {
				return res, err
			}
			snap, err := lastSnapshot(other)
			if err != nil {
				return res, err
			}
			restore := func(f *figure, target string, extra ...string) func() error {
				return func() error {
					d, _, err := b.raw(dir, ourRepo, append([]string{"restore", snap, "--target", target}, extra...)...)
					f.Base = append(f.Base, d)
					return err
				}
			}
			var ours time.Duration
			err = pair(i, func() error {
				if err := restore(&always, rawAlways)(); err != nil {
					return err
				}
				return restore(&changed, rawIfChanged, "--overwrite", "if-changed")()
			}, func() error {
				d, err := b.isync(nil, g(a, "pull")...)
				ours = d
				if err != nil {
					return err
				}
				return b.settle(a)
			})
			if err != nil {
				return res, err
			}
			if got, _ := lastSnapshot(a); got != snap {
				return res, fmt.Errorf("pull on the first computer did not fast-forward to %s", snap)
			}
			changed.Ours = append(changed.Ours, ours)
			always.Ours = append(always.Ours, ours)
		}
		res.Figures = append(res.Figures, changed, always)
	}

	// 5. Incremental push: one region file changed. The baseline backs up
	// into the same repository: every repository has its own key
	// derivation cost (restic calibrates it at init), which would
	// otherwise weigh more than the 64 KiB that changed.
	regions, err := filepath.Glob(filepath.Join(a, "saves", "World 1", "region", "*.mca"))
	if err != nil || len(regions) == 0 {
		return res, fmt.Errorf("no region files generated")
	}
	if b.want("incremental") {
		b.progress("%s: incremental push", sh.Name)
		incr := figure{Name: "incremental push", Slower: true, Goal: 1.05,
			Baseline: "`restic backup --parent LAST` of the same files into the same repository"}
		_, rawSnap, err := b.rawBackup(a, ourRepo, "")
		if err != nil {
			return res, err
		}
		for i := range b.runs {
			if err := touchRegion(regions[(i*5)%len(regions)], uint64(200+i)); err != nil {
				return res, err
			}
			err := pair(i, func() error {
				d, snap, err := b.rawBackup(a, ourRepo, rawSnap)
				incr.Base = append(incr.Base, d)
				rawSnap = snap
				return err
			}, func() error {
				d, err := b.isync(nil, g(a, "push")...)
				incr.Ours = append(incr.Ours, d)
				return err
			})
			if err != nil {
				return res, err
			}
		}
		res.Figures = append(res.Figures, incr)
		// The baseline's snapshots are new to instance-sync: one pull reads
		// their metadata, so the next no-op pull is a true no-op again.
		if _, err := b.isync(nil, g(a, "pull")...); err != nil {
			return res, err
		}
		if err := b.settle(a); err != nil {
			return res, err
		}
	}

	// 6. Peak memory of instance-sync itself, each operation once.
	if b.want("memory") {
		b.progress("%s: peak memory", sh.Name)
		peak := func(name string, extraEnv []string, args ...string) error {
			env := append(append([]string(nil), b.env...), extraEnv...)
			rss, err := peakRSS(b.tmp, env, b.bin, args...)
			if err != nil {
				return err
			}
			res.Memory = append(res.Memory, memFigure{Name: name, Peak: rss})
			return nil
		}
		if err := peak("no-op pull", nil, g(a, "pull")...); err != nil {
			return res, err
		}
		if err := b.settle(a); err != nil {
			return res, err
		}
		if pids := watch.Pids(a); len(pids) == 1 {
			hwm, err := vmHWM(pids[0])
			if err != nil {
				return res, err
			}
			res.Memory = append(res.Memory, memFigure{Name: "change watcher (after its walk)", Peak: hwm})
		}
		if err := peak("no-op push", nil, g(a, "push")...); err != nil {
			return res, err
		}
		if err := peak("no-op push, no watcher", nil, g(a, "push")...); err != nil {
			return res, err
		}
		if err := touchRegion(regions[1], 300); err != nil {
			return res, err
		}
		if err := peak("incremental push", nil, g(a, "push")...); err != nil {
			return res, err
		}
		if res.ManifestBytes, err = manifestSize(a); err != nil {
			return res, err
		}
		if otherReady {
			if _, err := b.isync(hostB, g(other, "pull")...); err != nil {
				return res, err
			}
			if err := playWorld(other, "World 1", 301); err != nil {
				return res, err
			}
			if _, err := b.isync(hostB, g(other, "push")...); err != nil {
				return res, err
			}
			if err := peak("changed pull", nil, g(a, "pull")...); err != nil {
				return res, err
			}
		}
		if _, err := b.isync(nil, initArgs(a, "--force")...); err != nil {
			return res, err
		}
		if err := peak("first push", nil, g(a, "push")...); err != nil {
			return res, err
		}
	}
	// Leave the server as small as we found it for the next size.
	if id, err := instanceID(a); err == nil {
		os.RemoveAll(serverRepo(id))
	}
	for _, r := range []string{ourRepo, rawRepo} {
		if r != "" {
			os.RemoveAll(serverRepo(r))
		}
	}
	return res, nil
}

// noWatcher keeps a push from asking a change watcher: it walks.
var noWatcher = []string{"INSTANCE_SYNC_WATCH=0"}

// statFigure times the no-op push without a watcher against a bare
// parallel stat of the same files (the bench binary with statEnv set, a
// process as ours is), in pairs.
func (b *bench) statFigure(pack, dir string) (figure, error) {
	f := figure{Name: "no-op push, no watcher, against stat", Slower: true, Goal: 1.2,
		Baseline: "a bare parallel `lstat` of the same files (one goroutine per core, names listed beforehand; a process of its own)"}
	list := filepath.Join(dir, "stat-list")
	n, err := writeStatList(pack, list)
	if err != nil {
		return f, err
	}
	self, err := os.Executable()
	if err != nil {
		return f, err
	}
	args := []string{"push", "--pack-folder=" + pack, "-g", "--no-download"}
	for i := range b.runs {
		err := pair(i, func() error {
			d, _, err := b.command(pack, []string{statEnv + "=" + list}, self)
			f.Base = append(f.Base, d)
			return err
		}, func() error {
			d, err := b.isync(noWatcher, args...)
			f.Ours = append(f.Ours, d)
			return err
		})
		if err != nil {
			return f, err
		}
	}
	f.Note = fmt.Sprintf("the stat list holds %d files", n)
	return f, nil
}

// manifestSize is the size of pack's manifest.json.
func manifestSize(pack string) (int64, error) {
	fi, err := os.Stat(filepath.Join(pack, ".cloud-sync", "manifest.json"))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// makeInstance writes the instance of shape sh to dir/a/minecraft and
// returns that folder; res gets its file count and size.
func (b *bench) makeInstance(dir string, sh shape, res *sizeResult) (string, error) {
	a := filepath.Join(dir, "a", "minecraft")
	start := time.Now()
	files, bytes, err := generate(a, sh, 1)
	if err != nil {
		return "", err
	}
	res.Files, res.Bytes = files, bytes
	b.progress("%s: generated %d files (%.0f MB) in scope in %s", sh.Name, files, float64(bytes)/1e6, time.Since(start).Round(time.Millisecond))
	return a, nil
}

// light measures on one generated instance only what grows with its file
// count: peak memory of the first, no-op and incremental push, the no-op
// push's walk against a bare stat, and the size of manifest.json.
func (b *bench) light(sh shape) (sizeResult, error) {
	res := sizeResult{Shape: sh, RTT: b.rtt, Light: true}
	dir := filepath.Join(b.tmp, sh.Name+"-light")
	if !b.keep {
		defer os.RemoveAll(dir)
	}
	a, err := b.makeInstance(dir, sh, &res)
	if err != nil {
		return res, err
	}
	g := []string{"--pack-folder=" + a, "-g", "--no-download"}
	if _, err := b.isync(nil, "init", "--url="+b.url, "--token-file="+b.tokenFile, "--pack-folder="+a); err != nil {
		return res, err
	}
	peak := func(name string, args ...string) error {
		env := append(append([]string(nil), b.env...), noWatcher...)
		rss, err := peakRSS(b.tmp, env, b.bin, args...)
		if err != nil {
			return err
		}
		res.Memory = append(res.Memory, memFigure{Name: name, Peak: rss})
		return nil
	}
	b.progress("%s: first push", sh.Name)
	if err := peak("first push", append([]string{"push"}, g...)...); err != nil {
		return res, err
	}
	if res.ManifestBytes, err = manifestSize(a); err != nil {
		return res, err
	}
	b.progress("%s: no-op push against a bare stat", sh.Name)
	stat, err := b.statFigure(a, dir)
	if err != nil {
		return res, err
	}
	res.Figures = append(res.Figures, stat)
	if err := peak("no-op push, no watcher", append([]string{"push"}, g...)...); err != nil {
		return res, err
	}
	regions, err := filepath.Glob(filepath.Join(a, "saves", "World 1", "region", "*.mca"))
	if err != nil || len(regions) == 0 {
		return res, fmt.Errorf("no region files generated")
	}
	if err := touchRegion(regions[0], 400); err != nil {
		return res, err
	}
	b.progress("%s: incremental push", sh.Name)
	if err := peak("incremental push", append([]string{"push"}, g...)...); err != nil {
		return res, err
	}
	if id, err := instanceID(a); err == nil {
		os.RemoveAll(filepath.Join(b.tmp, "server", b.user, id))
	}
	return res, nil
}
