//go:build unix

package testserver

import (
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// holdAddr binds a TCP socket to addr and does not listen on it. Address
// reuse lets it bind beside the stopped server's connections in
// TIME_WAIT; a listener on the port makes it fail.
func holdAddr(addr *net.TCPAddr) (io.Closer, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	return heldFD(fd), nil
}

type heldFD int

func (fd heldFD) Close() error { return unix.Close(int(fd)) }
