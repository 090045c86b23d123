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
	Files   int
	Bytes   int64
	Figures []figure
	Memory  []memFigure
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
	switch {
	case f.Goal == 0:
		return "(info)"
	case f.Slower:
		return fmt.Sprintf("≤ %.2f×", f.Goal)
	}
	return fmt.Sprintf("≥ %.0f× faster", f.Goal)
}

func (f figure) met() bool {
	switch {
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
			f.Name, f.Baseline, r.msText(median(f.Base)), r.msText(median(f.Ours)), f.format(f.ratioOfMedians()), f.ratioText(), f.targetText(), verdict(f.met(), f.Goal == 0))
	}
	for _, m := range r.Memory {
		target, v := "", ""
		if r.Shape.Name != "small" {
			target, v = "≤ 50 MB", verdict(m.Peak <= memGoal, false)
		}
		fmt.Fprintf(&b, "| peak memory, %s | (instance-sync's own VmHWM, restic excluded) | | %.1f MB | | | %s | %s |\n",
			m.Name, float64(m.Peak)/(1<<20), target, v)
	}
	b.WriteString("\n")
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

func (r report) allMet() bool {
	for _, s := range r.Sizes {
		for _, f := range s.Figures {
			if !f.met() {
				return false
			}
		}
		for _, m := range s.Memory {
			if s.Shape.Name != "small" && m.Peak > memGoal {
				return false
			}
		}
	}
	return true
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
  fast-forwards to it. Baseline: ` + "`restic restore`" + ` of the same snapshot into a folder
  that holds the previous version (kept current by the previous run's restore),
  with restic's default ` + "`--overwrite always`" + `, which reads every existing file to find
  what differs. The info row compares with ` + "`--overwrite if-changed`" + ` (skips files
  whose size and mtime match; what instance-sync passes).
- **incremental push**: one region file of the first world had 64 KiB
  rewritten. Baseline: ` + "`restic backup --parent LAST`" + ` of the same files into the
  same repository (each repository has its own key derivation cost, calibrated
  by restic at init, which would outweigh the 64 KiB that changed).
- **round trips**: with ` + "`-rtt=0,40ms`" + ` every figure is taken twice: on plain
  loopback, and through a user-space proxy (internal/netdelay) that delays
  each direction of every connection by half the round trip (the kernel here
  has no netem); both tools go through it. Medians are then also shown in
  round trips (time / RTT).
- **peak memory**: instance-sync's own peak resident memory (VmHWM read at
  its exit through ptrace), restic excluded; one run of each operation.
`
