//go:build unix

package testport

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// ListenPlain listens on addr without address reuse, as a program that
// sets no socket options would: it fails while anything is bound there.
// Tests use it to show that a port is held.
func ListenPlain(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0)
		})
		return errors.Join(err, serr)
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
