//go:build !unix

package testport

import (
	"io"
	"net"
)

// hold only finds a free port here: nothing keeps it taken.
func hold(addr *net.TCPAddr) (io.Closer, *net.TCPAddr, error) {
	if addr.Port != 0 {
		return io.NopCloser(nil), addr, nil
	}
	ln, err := net.ListenTCP("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	return io.NopCloser(nil), ln.Addr().(*net.TCPAddr), nil
}
