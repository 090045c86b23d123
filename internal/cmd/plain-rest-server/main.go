// Command plain-rest-server serves the upstream rest-server handler with its
// own htpasswd authentication, wired as rest-server's main does for
// "rest-server --htpasswd-file FILE --private-repos --append-only". It is
// the baseline the cloud-svc load test compares the data plane with; it is
// not shipped.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	restserver "github.com/restic/rest-server"
)

func main() {
	var s restserver.Server
	flag.StringVar(&s.Path, "path", "", "data directory")
	flag.StringVar(&s.Listen, "listen", "127.0.0.1:8000", "listen address")
	flag.StringVar(&s.HtpasswdPath, "htpasswd-file", "", "htpasswd file (bcrypt entries)")
	flag.BoolVar(&s.PrivateRepos, "private-repos", true, "users reach only /<user>/...")
	flag.BoolVar(&s.AppendOnly, "append-only", true, "clients cannot delete")
	flag.Parse()
	if s.Path == "" || s.HtpasswdPath == "" {
		fmt.Fprintln(os.Stderr, "plain-rest-server: --path and --htpasswd-file are required")
		os.Exit(2)
	}
	h, err := restserver.NewHandler(&s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plain-rest-server: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Addr: s.Listen, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(os.Stderr, "plain-rest-server: listening on %s\n", s.Listen)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintf(os.Stderr, "plain-rest-server: %v\n", err)
		os.Exit(1)
	}
}
