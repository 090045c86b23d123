package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// figure is one timed comparison.
type figure struct {
	Name     string
	Baseline string
	Base     []time.Duration
	Ours     []time.Duration
	// Slower figures compare ours/baseline against Goal as a ceiling;
	// the others compare baseline/ours (times faster) against Goal as a
	// floor. Goal 0 means information only.
	Slower bool
	Goal   float64
	// MaxRTT, when not 0, is a ceiling on our median in round trips,
	// judged only through a network.
	MaxRTT float64
	Note   string
}

type memFigure struct {
	Name string
	Peak int64 // bytes
}

// memGoal is the ceiling for instance-sync's own peak memory on the large,
// scale and huge instances.
const memGoal = 50 << 20

type sizeResult struct {
	Shape   shape
	RTT     time.Duration // the round trip the delay proxy added; 0 = loopback
	Light   bool          // only the figures that grow with the file count
	Files   int
	Bytes   int64
	Figures []figure
	Memory  []memFigure
	// ManifestBytes is the size of manifest.json after a push.
	ManifestBytes int64
}

type report struct {
	Command string
	Runs    int
	Machine string
	Sizes   []sizeResult
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratioOf(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ratio is the median of the ratios of the runs taken back to back (run i
// of the baseline with run i of ours). The machine drifts within one
// figure, and a pair shares its moment; the verdict is on this one.
func (f figure) ratio() float64 {
	var rs []float64
	for i := range min(len(f.Base), len(f.Ours)) {
		if f.Slower {
			rs = append(rs, ratioOf(f.Ours[i], f.Base[i]))
		} else {
			rs = append(rs, ratioOf(f.Base[i], f.Ours[i]))
		}
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	if len(rs)%2 == 1 {
		return rs[len(rs)/2]
	}
	return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
}

// ratioOfMedians is shown beside ratio.
func (f figure) ratioOfMedians() float64 {
	if f.Slower {
		return ratioOf(median(f.Ours), median(f.Base))
	}
	return ratioOf(median(f.Base), median(f.Ours))
}

func (f figure) ratioText() string { return f.format(f.ratio()) }

func (f figure) format(r float64) string {
	if f.Slower {
		return fmt.Sprintf("%.2f× the time", r)
	}
	return fmt.Sprintf("%.1f× faster", r)
}

func (f figure) targetText() string {
	var t string
	switch {
	case f.Goal == 0:
	case f.Slower:
		t = fmt.Sprintf("≤ %.2f×", f.Goal)
	default:
		t = fmt.Sprintf("≥ %.0f× faster", f.Goal)
	}
	switch {
	case f.MaxRTT > 0 && t != "":
		return fmt.Sprintf("%s on loopback; ≤ %.1f RTT through a network", t, f.MaxRTT)
	case f.MaxRTT > 0:
		return fmt.Sprintf("≤ %.1f RTT through a network", f.MaxRTT)
	case t == "":
		return "(info)"
	}
	return t
}

// info reports whether f has no target.
func (f figure) info() bool { return f.Goal == 0 && f.MaxRTT == 0 }

// met judges f taken at round trip rtt (0 = loopback). A figure with a
// ceiling in round trips is judged by it alone through a network.
func (f figure) met(rtt time.Duration) bool {
	switch {
	case f.MaxRTT > 0 && rtt > 0:
		return float64(median(f.Ours))/float64(rtt) <= f.MaxRTT
	case f.Goal == 0:
		return true
	case f.Slower:
		return f.ratio() <= f.Goal
	}
	return f.ratio() >= f.Goal
}

func verdict(ok bool, info bool) string {
	switch {
	case info:
		return ""
	case ok:
		return "met"
	}
	return "**missed**"
}

func (r sizeResult) title() string {
	net := "loopback"
	if r.RTT > 0 {
		net = fmt.Sprintf("%d ms round trip", r.RTT.Milliseconds())
	}
	return fmt.Sprintf("%s instance: %d files, %.0f MB in the sync scope; %s", r.Shape.Name, r.Files, float64(r.Bytes)/1e6, net)
}

// msText is a median in milliseconds, and in round trips when the
// network has one.
func (r sizeResult) msText(d time.Duration) string {
	if r.RTT == 0 {
		return fmt.Sprintf("%.0f ms", ms(d))
	}
	return fmt.Sprintf("%.0f ms (%.1f RTT)", ms(d), float64(d)/float64(r.RTT))
}

// table is the markdown table of one size.
func (r sizeResult) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s\n\n", r.title())
	b.WriteString("| figure | baseline | baseline median | instance-sync median | ratio of medians | median of paired ratios | target | |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|---|---|\n")
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			f.Name, f.Baseline, r.msText(median(f.Base)), r.msText(median(f.Ours)), f.format(f.ratioOfMedians()), f.ratioText(), f.targetText(), verdict(f.met(r.RTT), f.info()))
	}
	for _, m := range r.Memory {
		target, v := "", ""
		if r.memJudged() {
			target, v = "≤ 50 MB", verdict(m.Peak <= memGoal, false)
		}
		fmt.Fprintf(&b, "| peak memory, %s | (instance-sync's own VmHWM, restic excluded) | | %.1f MB | | | %s | %s |\n",
			m.Name, float64(m.Peak)/(1<<20), target, v)
	}
	b.WriteString("\n")
	if r.ManifestBytes > 0 {
		fmt.Fprintf(&b, "- manifest.json: %.1f MB, %.0f bytes a file\n", float64(r.ManifestBytes)/1e6, float64(r.ManifestBytes)/float64(max(r.Files, 1)))
	}
	for _, f := range r.Figures {
		if f.Note != "" {
			fmt.Fprintf(&b, "- %s: %s\n", f.Name, f.Note)
		}
	}
	return b.String()
}

func (r sizeResult) runs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s, every run in order (ms):\n\n", r.title())
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "- %s: baseline %s; instance-sync %s\n", f.Name, msList(f.Base), msList(f.Ours))
	}
	return b.String()
}

func msList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.0f", ms(d))
	}
	return strings.Join(s, " ")
}

// memJudged: the memory ceiling is for the large instances.
func (r sizeResult) memJudged() bool { return r.Shape.Name != "small" }

func (r report) allMet() bool {
	for _, s := range r.Sizes {
		for _, f := range s.Figures {
			if !f.met(s.RTT) {
				return false
			}
		}
		for _, m := range s.Memory {
			if s.memJudged() && m.Peak > memGoal {
				return false
			}
		}
	}
	return true
}

// netName is a round trip as a column heading.
func netName(rtt time.Duration) string {
	if rtt == 0 {
		return "loopback"
	}
	return fmt.Sprintf("%d ms RTT", rtt.Milliseconds())
}

// targets is one table of every figure with a target, a column for each
// network it was taken on: the verdicts at a glance.
func (r report) targets() string {
	var nets []time.Duration
	type row struct {
		name, target string
		cells        map[time.Duration]string
		local        bool // taken on loopback only: it does not use the network
	}
	var rows []*row
	byName := map[string]*row{}
	cell := func(name, target string, rtt time.Duration, text string, local bool) {
		if !slices.Contains(nets, rtt) {
			nets = append(nets, rtt)
		}
		rw := byName[name]
		if rw == nil {
			rw = &row{name: name, target: target, cells: map[time.Duration]string{}, local: local}
			byName[name] = rw
			rows = append(rows, rw)
		}
		rw.cells[rtt] = text
	}
	for _, s := range r.Sizes {
		where := fmt.Sprintf("%s (%d files)", s.Shape.Name, s.Files)
		for _, f := range s.Figures {
			if f.info() {
				continue
			}
			text := f.ratioText()
			if f.MaxRTT > 0 && s.RTT > 0 {
				text = fmt.Sprintf("%.1f RTT", float64(median(f.Ours))/float64(s.RTT))
			}
			name := f.Name + ", " + where
			cell(name, f.targetText(), s.RTT, text+" "+verdict(f.met(s.RTT), false), s.Light)
		}
		if s.memJudged() {
			for _, m := range s.Memory {
				cell("peak memory, "+m.Name+", "+where, "≤ 50 MB", s.RTT, fmt.Sprintf("%.1f MB %s", float64(m.Peak)/(1<<20), verdict(m.Peak <= memGoal, false)), s.Light)
			}
		}
	}
	var b strings.Builder
	b.WriteString("\n## Targets\n\n| figure | target |")
	for _, n := range nets {
		b.WriteString(" " + netName(n) + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(nets)) + "\n")
	for _, rw := range rows {
		fmt.Fprintf(&b, "| %s | %s |", rw.name, rw.target)
		for _, n := range nets {
			c := rw.cells[n]
			switch {
			case c != "":
			case rw.local:
				c = "(no network used: as on loopback)"
			default:
				c = "(not taken)"
			}
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// machine describes where the figures were taken.
func machine(resticBin string) string {
	mem := "unknown"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(v), &kb)
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	rv := "unknown"
	if out, err := exec.Command(resticBin, "version").Output(); err == nil {
		rv = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s/%s, nproc %d, memory %s, %s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), mem, runtime.Version(), rv)
}

func (r report) markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("How long the launcher hooks make a player wait, against plain restic doing the same work.\n\n")
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "- Each figure is the median of %d runs; baseline and instance-sync runs alternate, and each goes first in half the pairs (the second of a pair runs measurably slower on this machine, so an odd run count would favour one side).\n", r.Runs)
	b.WriteString("- The verdict is on the median of the paired ratios: run i of the baseline against run i of instance-sync, taken back to back. This machine drifts within one figure (see every run below), and a pair shares its moment. The ratio of the two medians is shown beside it.\n\n")
	b.WriteString(method)
	b.WriteString(r.targets())
	for _, s := range r.Sizes {
		b.WriteString(s.table())
	}
	b.WriteString("\n## Every run\n")
	for _, s := range r.Sizes {
		b.WriteString(s.runs())
	}
	return b.String()
}

const method = `## What is compared

Both tools run against the upstream rest-server handler (append-only, private
repositories) in-process on loopback, with the same restic 0.18.1 binary, the
same restic cache folder and secrets only in the environment. instance-sync
is the real binary run as a subprocess, as a launcher runs it (` + "`pull`/`push -g --no-download`" + `),
so process start-up is included. The generated instances hold worlds of region
files (2–4 MB each; 4 KiB sectors that are random, zero or low-entropy), many
small files (playerdata, advancements, stats, data/), options.txt, servers.dat,
a resource pack, screenshots, and out-of-scope mods/, config/ and logs/.

- **no-op pull / no-op push**: nothing changed anywhere. Baseline: one
  ` + "`restic snapshots --no-lock --json`" + ` on the same repository (the least any
  restic-based check costs: restic derives its key on every run).
- **first push**: a fresh repository each run. instance-sync's first push
  creates the repository and backs up, so the baseline is ` + "`restic init`" + ` then
  ` + "`restic backup`" + ` of the same files (the scope roots, excluding session.lock and
  *.dat_old); the ratio against ` + "`restic backup`" + ` alone is in the note.
- **changed pull**: another computer played one world (3 region files,
  level.dat, one playerdata file) and pushed; the timed run is the pull that
  fast-forwards to it. Baseline: ` + "`restic restore --overwrite if-changed`" + ` of the
  same snapshot into a folder that holds the previous version (kept current by
  the previous run's restore): restic skips the files whose size and mtime
  match, as instance-sync's restore does. The info row compares with restic's
  default ` + "`--overwrite always`" + `, which reads every existing file to find what
  differs.
- **incremental push**: one region file of the first world had 64 KiB
  rewritten. Baseline: ` + "`restic backup --parent LAST`" + ` of the same files into the
  same repository (each repository has its own key derivation cost, calibrated
  by restic at init, which would outweigh the 64 KiB that changed).
- **round trips**: with ` + "`-rtt=0,40ms`" + ` every figure is taken twice: on plain
  loopback, and through a user-space proxy (internal/netdelay) that delays
  each direction of every connection by half the round trip (the kernel here
  has no netem); both tools go through it. Medians are then also shown in
  round trips (time / RTT).
- **no-op push, no watcher, against stat**: the push after a game that
  started without a pull (` + "`INSTANCE_SYNC_WATCH=0`" + `), which stats every file in
  scope, against the least any such check costs: a process that stats the
  same files, listed beforehand, from one goroutine per core.
- **peak memory**: instance-sync's own peak resident memory (VmHWM read at
  its exit through ptrace), restic excluded; one run of each operation.
- **scale and huge** (` + "`-size=issue`" + `): the large instance plus 90,000 or
  240,000 small map-mod tiles (` + "`XaeroWorldMap/`" + `), about 100,000 and 250,000
  files. Only what grows with the file count is taken on them, on loopback
  (none of it uses the network): peak memory of the first, no-op and
  incremental push, the no-op push against a bare stat, and the size of
  manifest.json.
`
