//go:build !unix

package testserver

import (
	"io"
	"net"
)

// holdAddr holds nothing here: the port is only freed.
func holdAddr(*net.TCPAddr) (io.Closer, error) { return io.NopCloser(nil), nil }
