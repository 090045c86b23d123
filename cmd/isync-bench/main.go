// Command isync-bench measures instance-sync against plain restic on
// generated instances, to show that the launcher hooks never make a player
// wait longer than restic itself would.
//
// It starts the upstream rest-server in-process on loopback, builds the
// instance-sync binary and runs it as a subprocess (as a launcher does, so
// process start-up counts), and runs the baselines with the same restic
// binary, environment and server, interleaved with our runs. Figures are
// medians. The restic binary comes from $INSTANCE_SYNC_TEST_RESTIC.
//
//	go run ./cmd/isync-bench -size=both -runs=5 -out=BENCHMARKS.md
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/internal/netdelay"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
)

func main() {
	if list := os.Getenv(statEnv); list != "" {
		os.Exit(statMain(list))
	}
	os.Exit(run())
}

func run() int {
	size := flag.String("size", "small", "instance size: small (~500 files, ~30 MB), large (~10,000 files, ~1 GB), both, scale (~100,000 files: large plus map-mod tiles), huge (~250,000 files), or issue: every figure of the performance targets (large at every -rtt; scale and huge on loopback, only the figures that depend on the file count)")
	figures := flag.String("figures", "all", "with a size other than issue: the figures to take, comma-separated from first, noop, changed, incremental, memory (e.g. changed for the changed pull alone; without first, one untimed push makes the repository)")
	light := flag.Bool("light", false, "take only the figures that grow with the file count (peak memory of the pushes, the no-op push against a bare stat, manifest.json's size), on loopback")
	runs := flag.Int("runs", 6, "measured runs per figure (the median is reported); an odd number is rounded up")
	out := flag.String("out", "", "write the report (markdown) to this file, e.g. BENCHMARKS.md")
	keep := flag.Bool("keep", false, "keep the generated data (printed at the end)")
	verbose := flag.Bool("v", false, "print every timed command")
	trace := flag.Bool("trace", false, "with -v: also print every request the server got during each command, by client (restic or instance-sync) and time")
	rtts := flag.String("rtt", "0", "round trips to measure at, comma-separated (e.g. 0,40ms): a delay proxy between the clients and the server adds half of each in each direction")
	rate := flag.Int64("rate", 0, "with -rtt: cap each direction of each connection at this many bytes a second (0 = no cap)")
	serve := flag.Bool("serve", false, "only start the rest-server and an account (for profiling by hand); stop with Ctrl-C")
	reuse := flag.String("reuse", "", "with -serve: serve the data a -keep run left in this folder, on this address (e.g. /tmp/isync-bench-1/server=127.0.0.1:44977)")
	flag.Parse()
	var sizes []sizeRun
	switch *size {
	case "small", "large", "scale", "huge":
		sizes = []sizeRun{{shape: shapes[*size], light: *light}}
	case "both":
		sizes = []sizeRun{{shape: shapes["small"], light: *light}, {shape: shapes["large"], light: *light}}
	case "issue":
		sizes = []sizeRun{{shape: shapes["large"]}, {shape: shapes["scale"], light: true}, {shape: shapes["huge"], light: true}}
	default:
		fmt.Fprintf(os.Stderr, "isync-bench: -size=%s: use small, large, both, scale, huge or issue\n", *size)
		return 2
	}
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "isync-bench: -runs must be at least 1")
		return 2
	}
	if *runs%2 == 1 {
		// Whichever of a pair runs second is measurably slower here (the
		// first left the machine warm and its writes to flush), so each
		// order must run equally often.
		*runs++
		fmt.Fprintf(os.Stderr, "isync-bench: -runs rounded up to %d, so baseline and instance-sync go first equally often\n", *runs)
	}
	var nets []time.Duration
	for _, f := range strings.Split(*rtts, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if f == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			fmt.Fprintf(os.Stderr, "isync-bench: -rtt=%s: use durations such as 0,40ms\n", *rtts)
			return 2
		}
		nets = append(nets, d)
	}
	if *serve && *reuse != "" {
		return reuseServe(*reuse)
	}
	b, cleanup, err := setup(*runs, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "isync-bench:", err)
		return 1
	}
	b.keep = *keep
	if *figures != "all" {
		b.figures = map[string]bool{}
		for _, f := range strings.Split(*figures, ",") {
			switch f = strings.TrimSpace(f); f {
			case "first", "noop", "changed", "incremental", "memory":
				b.figures[f] = true
			default:
				fmt.Fprintf(os.Stderr, "isync-bench: -figures: %q is none of first, noop, changed, incremental, memory\n", f)
				cleanup()
				return 2
			}
		}
	}
	if *trace {
		b.traceRequests()
	}
	if *serve {
		fmt.Printf("rest-server on %s, account %s:%s (token file %s), data in %s\n", b.url, b.user, b.password, b.tokenFile, b.tmp)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		cleanup()
		return 0
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "isync-bench: data kept in", b.tmp)
	} else {
		defer cleanup()
	}
	rep := report{Command: commandLine(), Runs: *runs, Machine: machine(b.restic)}
	for _, rtt := range nets {
		stop, err := b.network(rtt, *rate)
		if err != nil {
			fmt.Fprintln(os.Stderr, "isync-bench:", err)
			return 1
		}
		for _, s := range sizes {
			if s.light && rtt != 0 {
				continue // memory and the walk do not depend on the network
			}
			run := b.size
			if s.light {
				run = b.light
			}
			res, err := run(s.shape)
			if err != nil {
				stop()
				fmt.Fprintf(os.Stderr, "isync-bench: %s: %v\n", s.shape.Name, err)
				return 1
			}
			rep.Sizes = append(rep.Sizes, res)
			fmt.Print(res.table())
		}
		stop()
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(rep.markdown()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "isync-bench:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "isync-bench: wrote", *out)
	}
	if !rep.allMet() {
		fmt.Fprintln(os.Stderr, "isync-bench: some targets are missed (see the table)")
	}
	return 0
}

// sizeRun is one instance size to measure; a light one measures only
// what depends on the file count (memory, the walk, manifest.json).
type sizeRun struct {
	shape shape
	light bool
}

// The account both tools use.
const benchUser, benchPassword = "bench", "bench-password-0123456789"

// setup builds instance-sync, starts the rest-server and prepares the
// environment both tools run in.
func setup(runs int, verbose bool) (*bench, func(), error) {
	resticBin := os.Getenv("INSTANCE_SYNC_TEST_RESTIC")
	if resticBin == "" {
		return nil, nil, fmt.Errorf("set INSTANCE_SYNC_TEST_RESTIC to the restic 0.18.1 binary (make tools builds .bin/restic)")
	}
	resticBin, err := filepath.Abs(resticBin)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "isync-bench-")
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*bench, func(), error) {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	bin := filepath.Join(tmp, "bin", "instance-sync")
	build := exec.Command("go", "build", "-o", bin, "./cmd/instance-sync")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fail(fmt.Errorf("building instance-sync (run from the module root): %w", err))
	}
	log.SetOutput(io.Discard) // rest-server logs every repository it creates
	const user, password = benchUser, benchPassword
	srv, err := testserver.Start(filepath.Join(tmp, "server"), "", map[string]string{user: password})
	if err != nil {
		return fail(err)
	}
	b := &bench{srv: srv, tmp: tmp, bin: bin, restic: resticBin, url: srv.URL, serverURL: srv.URL, user: user, password: password,
		tokenFile: filepath.Join(tmp, "token"), runs: runs, verbose: verbose}
	if err := os.WriteFile(b.tokenFile, []byte(user+":"+password+"\n"), 0o600); err != nil {
		srv.Close()
		return fail(err)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "RESTIC_") || strings.HasPrefix(k, "INSTANCE_SYNC_") || strings.HasPrefix(k, "INST_") || k == "XDG_CACHE_HOME" || k == "XDG_CONFIG_HOME" || k == "DISPLAY" || k == "WAYLAND_DISPLAY" {
			continue
		}
		b.env = append(b.env, kv)
	}
	// One restic cache for both tools, and the tokens, inside the temp folder.
	b.env = append(b.env, "XDG_CACHE_HOME="+filepath.Join(tmp, "cache"), "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"), "INSTANCE_SYNC_RESTIC="+resticBin)
	return b, func() { srv.Close(); os.RemoveAll(tmp) }, nil
}

// reuseServe serves a kept run's repositories again, so the instances it
// left can be synced by hand (for profiling).
func reuseServe(spec string) int {
	dir, addr, ok := strings.Cut(spec, "=")
	if !ok {
		fmt.Fprintln(os.Stderr, "isync-bench: -reuse: use FOLDER=HOST:PORT")
		return 2
	}
	log.SetOutput(io.Discard)
	srv, err := testserver.Start(dir, addr, map[string]string{benchUser: benchPassword})
	if err != nil {
		fmt.Fprintln(os.Stderr, "isync-bench:", err)
		return 1
	}
	defer srv.Close()
	fmt.Printf("rest-server on %s serving %s\n", srv.URL, dir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	return 0
}

// network puts a delay proxy adding rtt to every round trip (and capping
// the rate, if rate > 0) between the clients and the server, or none for
// rtt 0. stop removes it.
func (b *bench) network(rtt time.Duration, rate int64) (stop func(), err error) {
	b.rtt, b.url = rtt, b.serverURL
	if rtt == 0 {
		return func() {}, nil
	}
	u, err := url.Parse(b.serverURL)
	if err != nil {
		return nil, err
	}
	p, err := netdelay.Start(u.Host, rtt/2, rate)
	if err != nil {
		return nil, err
	}
	b.url = "http://" + p.Addr()
	b.progress("a delay proxy on %s adds %v to every round trip", p.Addr(), rtt)
	return func() { p.Close(); b.rtt, b.url = 0, b.serverURL }, nil
}

func commandLine() string {
	args := append([]string{"go", "run", "./cmd/isync-bench"}, os.Args[1:]...)
	return "INSTANCE_SYNC_TEST_RESTIC=" + os.Getenv("INSTANCE_SYNC_TEST_RESTIC") + " " + strings.Join(args, " ")
}
