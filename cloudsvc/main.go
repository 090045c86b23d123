package cloudsvc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"git.timemachine.center/timemachine/instance-sync/resticbin"
)

// Exit codes of cloud-svc.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Main is cloud-svc's command line: it parses args, serves until SIGINT or
// SIGTERM and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return MainContext(ctx, args, stdout, stderr)
}

// MainContext is Main with the stop signal as a context, for tests.
func MainContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloud-svc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg            Config
		listen         = fs.String("listen", ":8000", "public address: the restic REST data plane for players")
		adminListen    = fs.String("admin-listen", "127.0.0.1:8001", "admin API address; keep it on loopback or a private network")
		tlsCert        = fs.String("tls-cert", "", "TLS certificate (PEM) for the public port; without it the port speaks plain http (put a TLS reverse proxy in front)")
		tlsKey         = fs.String("tls-key", "", "TLS private key (PEM) for --tls-cert")
		resticFlag     = fs.String("restic-binary", "", "restic "+resticbin.Version+" executable used for retention, rotation and instance labels")
		resticDownload = fs.Bool("restic-download", false, "download the official restic "+resticbin.Version+" release into the per-user cache when no restic is found (off: the server never reaches the network on its own)")
	)
	fs.StringVar(&cfg.DataDir, "data", "data", "data directory: account store, keys, repositories")
	fs.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "file holding the admin bearer token, created with a random token if missing (default <data>/admin.token)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "URL handed to players with their token (default derived from --listen)")
	fs.DurationVar(&cfg.RetentionInterval, "retention-interval", 24*time.Hour, "how often retention runs; 0 turns the schedule off (POST /retention still works)")
	fs.IntVar(&cfg.Policy.KeepLast, "keep-last", 10, "retention: keep the last N snapshots of each instance")
	fs.IntVar(&cfg.Policy.KeepDaily, "keep-daily", 14, "retention: keep the last snapshot of each of N days")
	fs.IntVar(&cfg.Policy.KeepWeekly, "keep-weekly", 8, "retention: keep the last snapshot of each of N weeks")
	fs.IntVar(&cfg.Policy.KeepMonthly, "keep-monthly", 12, "retention: keep the last snapshot of each of N months")
	fs.DurationVar(&cfg.KeepSafety, "keep-safety", 30*24*time.Hour, "retention never removes a kind:safety snapshot younger than this")
	fs.IntVar(&cfg.ResticConcurrency, "restic-concurrency", 2, "restic runs the server makes at once")
	fs.StringVar(&cfg.Store, "store", "", "account store: empty for the embedded one in <data>/accounts.db, or postgres://USER@HOST:PORT/DB for several nodes (password in $PGPASSWORD or ~/.pgpass)")
	quota := fs.String("quota", "0", "default storage limit per account, like 10GB or 500MiB; 0 means none (the admin API sets one per account)")
	fs.StringVar(&cfg.NodeName, "node-name", "", "this node's name in metrics and the log (default: the host name)")
	fs.DurationVar(&cfg.RotationGrace, "rotation-grace", time.Minute, "with PostgreSQL: how long a password rotation waits for other nodes' in-flight requests")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cloud-svc: unexpected argument %q; all settings are flags, see cloud-svc -h\n", fs.Arg(0))
		return ExitUsage
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(stderr, "cloud-svc: --tls-cert and --tls-key go together; pass both or neither")
		return ExitUsage
	}
	if cfg.RetentionInterval < 0 || cfg.KeepSafety < 0 {
		fmt.Fprintln(stderr, "cloud-svc: --retention-interval and --keep-safety must not be negative")
		return ExitUsage
	}
	if cfg.Store != "" {
		if !IsPostgresURL(cfg.Store) {
			fmt.Fprintf(stderr, "cloud-svc: --store=%q: use postgres://USER@HOST:PORT/DB, or leave it out for the embedded store\n", cfg.Store)
			return ExitUsage
		}
		if err := CheckPostgresURL(cfg.Store); err != nil {
			fmt.Fprintf(stderr, "cloud-svc: %v\n", err)
			return ExitUsage
		}
	}
	q, err := ParseSize(*quota)
	if err != nil {
		fmt.Fprintf(stderr, "cloud-svc: --quota: %v\n", err)
		return ExitUsage
	}
	cfg.DefaultQuota = q
	if cfg.RotationGrace < 0 {
		fmt.Fprintln(stderr, "cloud-svc: --rotation-grace must not be negative")
		return ExitUsage
	}
	// Every node must seal with the same key: a secret in the environment
	// spares copying server.key around.
	cfg.ServerKey = strings.TrimSpace(os.Getenv("CLOUD_SVC_SERVER_KEY"))
	cfg.Log = stderr

	// An explicit --restic-binary is a usage matter: check it (a stat, never
	// the network) before anything else.
	resticOpts := resticbin.Options{Flag: *resticFlag, NoDownload: !*resticDownload}
	var found resticbin.Found
	if *resticFlag != "" {
		f, err := lookupRestic(ctx, resticOpts)
		if err != nil {
			fmt.Fprintf(stderr, "cloud-svc: %v\n", err)
			return ExitUsage
		}
		found = f
	}

	// Cheap checks that need nothing from the disk come first, so a taken
	// port leaves no data directory behind and costs no restic lookup.
	pub, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "cloud-svc: public port: %v; choose another --listen\n", err)
		return ExitError
	}
	defer pub.Close()
	adm, err := net.Listen("tcp", *adminListen)
	if err != nil {
		fmt.Fprintf(stderr, "cloud-svc: admin port: %v; choose another --admin-listen\n", err)
		return ExitError
	}
	defer adm.Close()

	svc, err := Open(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cloud-svc: %v\n", err)
		return ExitError
	}
	defer svc.Close()

	// The server never downloads restic unless told to: an operator's
	// machine may be offline, and what runs on it should be chosen.
	if found.Path == "" {
		found, err = lookupRestic(ctx, resticOpts)
	}
	if err != nil {
		// The data plane does not need restic; only the server's own
		// maintenance does, and it reports the problem when asked.
		hint := ""
		if !*resticDownload {
			hint = " or start with --restic-download to fetch the official release"
		}
		fmt.Fprintf(stderr, "cloud-svc: warning: %v%s; retention, rotation and instance labels are off until restic is available\n", err, hint)
	} else {
		svc.useRestic(found.Path)
	}

	if err := svc.Serve(ctx, pub, adm, *tlsCert, *tlsKey); err != nil {
		fmt.Fprintf(stderr, "cloud-svc: %v\n", err)
		return ExitError
	}
	return ExitOK
}

// lookupRestic is resticbin.Find; tests observe the lookups through it.
var lookupRestic = resticbin.Find
