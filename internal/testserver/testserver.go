// Package testserver runs the upstream rest-server handler in-process on
// loopback, append-only with private repositories, exactly as players'
// servers run it. Tests and the demo use it; nothing here is a stand-in.
//
// Passwords are checked in front of the handler, which takes the user from
// a header (its ProxyAuthUsername mode, as cloud-svc runs it), against
// bcrypt hashes as in an htpasswd file. rest-server's own htpasswd cache
// has a data race (a timer wipes cached verifiers while requests read
// them), which the race detector reports in any test that runs long
// enough.
package testserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	restserver "github.com/restic/rest-server"
	"golang.org/x/crypto/bcrypt"

	"git.timemachine.center/timemachine/instance-sync/internal/testport"
)

// Server is a running rest-server.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	DataDir string
	srv     *http.Server
	ln      net.Listener
	held    io.Closer // Down's hold on the address, released by Close

	mu       sync.Mutex
	hook     func(w http.ResponseWriter, r *http.Request) bool
	verified map[string]string // user → password that passed bcrypt
	closed   bool              // Close began: new requests get a 503
	busy     int               // requests being handled
	idle     *sync.Cond        // signalled when busy drops to 0
}

// userHeader carries the checked user to the rest-server handler.
const userHeader = "X-Testserver-User"

// valid checks a password against the user's bcrypt hash, remembering
// what passed (restic makes hundreds of requests in a backup).
func (s *Server) valid(hashes map[string][]byte, user, pw string) bool {
	s.mu.Lock()
	ok := s.verified[user] == pw && pw != ""
	s.mu.Unlock()
	if ok {
		return true
	}
	h, known := hashes[user]
	if !known || bcrypt.CompareHashAndPassword(h, []byte(pw)) != nil {
		return false
	}
	s.mu.Lock()
	if s.verified == nil {
		s.verified = map[string]string{}
	}
	s.verified[user] = pw
	s.mu.Unlock()
	return true
}

// Start serves a rest-server over dataDir with the given users
// (name → password) on 127.0.0.1:0, or on addr when not empty.
func Start(dataDir, addr string, users map[string]string) (*Server, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	hashes := make(map[string][]byte, len(users))
	for u, pw := range users {
		// The minimum cost keeps tests fast; the check is the real one.
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		hashes[u] = h
	}
	rs := &restserver.Server{
		Path:              dataDir,
		AppendOnly:        true,
		PrivateRepos:      true,
		ProxyAuthUsername: userHeader,
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
	s.idle = sync.NewCond(&s.mu)
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "server closed", http.StatusServiceUnavailable)
			return
		}
		s.busy++
		hook := s.hook
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			if s.busy--; s.busy == 0 {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
		}()
		if hook != nil && hook(w, r) {
			return
		}
		r.Header.Del(userHeader) // only this wrapper sets it
		if u, pw, ok := r.BasicAuth(); ok && s.valid(hashes, u, pw) {
			r.Header.Set(userHeader, u)
		}
		h.ServeHTTP(w, r) // without the header: 401
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

// Close stops the server and waits for the requests it is still handling,
// so that nothing writes into DataDir after it returns (a test's temporary
// folder is removed right after). http.Server.Close alone returns at once:
// a handler that has not read a request's body is not told that its
// client went away, and writes the upload (a temporary file in the
// repository's data/ folder) when it gets to it. A hook that holds
// requests back must therefore let them go before Close.
func (s *Server) Close() error {
	s.mu.Lock()
	was, held := s.closed, s.held
	s.closed, s.held = true, nil
	s.mu.Unlock()
	if held != nil {
		held.Close()
	}
	if was {
		return nil
	}
	err := s.srv.Close()
	// Serve may not have started, and http.Server.Close closes only the
	// listeners Serve took: the port is free when Close returns.
	s.ln.Close()
	s.mu.Lock()
	for s.busy > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Down stops the server as Close does, and keeps its port taken until
// Close: a socket bound to the address without listening, so connections
// are refused, as by a server that is down, and no other server (another
// test's, started on 127.0.0.1:0 meanwhile) can be given the port.
func (s *Server) Down() error {
	if err := s.Close(); err != nil {
		return err
	}
	held, err := testport.Hold(s.ln.Addr().String())
	if err != nil {
		return fmt.Errorf("keep the port of the stopped server: %w", err)
	}
	s.mu.Lock()
	s.held = held
	s.mu.Unlock()
	return nil
}
