package main

import (
	"strings"
	"testing"
	"time"
)

func ms2(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// TestTargetsTable: each target gets a verdict per network; the no-op
// pull is judged in round trips through a network (not "times faster"),
// information rows stay out, and a light size's figures say they use no
// network.
func TestTargetsTable(t *testing.T) {
	pull := func() figure {
		return figure{Name: "no-op pull", Goal: 20, MaxRTT: 2.5, Base: ms2(600, 600), Ours: ms2(20, 20)}
	}
	loop := sizeResult{Shape: shapes["large"], Files: 10721, Figures: []figure{
		pull(),
		{Name: "changed pull", Slower: true, Goal: 1.05, Base: ms2(1000, 1000), Ours: ms2(1100, 1100)},
		{Name: "changed pull (info)", Slower: true, Base: ms2(1000), Ours: ms2(900)},
	}}
	slow := pull()
	slow.Base, slow.Ours = ms2(400, 400), ms2(120, 120) // 3.3× faster, but 3 RTT
	net := sizeResult{Shape: shapes["large"], Files: 10721, RTT: 40 * time.Millisecond, Figures: []figure{
		slow,
		{Name: "changed pull", Slower: true, Goal: 1.05, Base: ms2(2000, 2000), Ours: ms2(2000, 2040)},
	}}
	light := sizeResult{Shape: shapes["huge"], Light: true, Files: 250721, Memory: []memFigure{{Name: "first push", Peak: 30 << 20}}}
	got := report{Sizes: []sizeResult{loop, net, light}}.targets()
	for _, want := range []string{
		"| figure | target | loopback | 40 ms RTT |",
		"| no-op pull, large (10721 files) | ≥ 20× faster on loopback; ≤ 2.5 RTT through a network | 30.0× faster met | 3.0 RTT **missed** |",
		"| changed pull, large (10721 files) | ≤ 1.05× | 1.10× the time **missed** | 1.01× the time met |",
		"| peak memory, first push, huge (250721 files) | ≤ 50 MB | 30.0 MB met | (no network used: as on loopback) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "(info)") {
		t.Errorf("an information row is in the targets table:\n%s", got)
	}
	if (report{Sizes: []sizeResult{loop}}).allMet() || !(report{Sizes: []sizeResult{light}}).allMet() {
		t.Error("allMet disagrees with the verdicts")
	}
	// 6.7× faster, short of 20×, but 1.5 RTT: met through a network.
	fast := pull()
	fast.Base, fast.Ours = ms2(400, 400), ms2(60, 60)
	if !fast.met(40*time.Millisecond) || fast.met(0) {
		t.Error("the no-op pull through a network must be judged by its round trips alone")
	}
}
