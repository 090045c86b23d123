// Package testport keeps loopback ports taken without listening on them,
// for tests that stop a server and expect its address to refuse, or that
// give a program they start an address to listen on.
//
// A socket bound with address reuse and not listening has no effect on
// connections (they are refused, or reach the listener that binds beside
// it), but a listener on 127.0.0.1:0 is never given its port. A port that
// is closed and then named again instead (a stopped server, or a free
// port found by listening and closing) can be given to any other test
// meanwhile, which then answers in its place or makes the bind fail.
package testport

import (
	"io"
	"net"
)

// Hold keeps addr (host:port, the port not 0) taken until the Closer is
// closed. It fails while anything listens there.
func Hold(addr string) (io.Closer, error) {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	c, _, err := hold(a)
	return c, err
}

// Reserve takes a free port on 127.0.0.1 and returns its address, for a
// program that listens there with address reuse (Go's net.Listen, HAProxy,
// PostgreSQL all set it) while the Closer keeps any other listener off it,
// also between a stop and a restart of that program.
func Reserve() (string, io.Closer, error) {
	c, a, err := hold(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", nil, err
	}
	return a.String(), c, nil
}
