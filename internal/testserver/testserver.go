// Package testserver runs the upstream rest-server handler in-process on
// loopback, append-only with private repositories, exactly as players'
// servers run it. Tests and the demo use it; nothing here is a stand-in.
package testserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	restserver "github.com/restic/rest-server"
	"golang.org/x/crypto/bcrypt"
)

// Server is a running rest-server.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	DataDir string
	srv     *http.Server
	ln      net.Listener

	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
}

// Start serves a rest-server over dataDir with the given users
// (name → password) on 127.0.0.1:0, or on addr when not empty.
func Start(dataDir, addr string, users map[string]string) (*Server, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	htpasswd := filepath.Join(dataDir, ".htpasswd")
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		// The minimum cost keeps tests fast; the format is the real one.
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	if err := os.WriteFile(htpasswd, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	rs := &restserver.Server{
		Path:         dataDir,
		HtpasswdPath: htpasswd,
		AppendOnly:   true,
		PrivateRepos: true,
	}
	h, err := restserver.NewHandler(rs)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String(), DataDir: dataDir, ln: ln}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hook := s.hook
		s.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// SetHook installs a function that sees every request first and may answer
// it itself (returning true), e.g. to fail requests with a 500.
func (s *Server) SetHook(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

// Close stops the server.
func (s *Server) Close() error {
	err := s.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
