//go:build unix

package testport

import (
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// hold binds a TCP socket with address reuse to addr and does not listen
// on it; it returns the address bound (the port the kernel picked for 0).
func hold(addr *net.TCPAddr) (io.Closer, *net.TCPAddr, error) {
	ip := addr.IP.To4()
	if ip == nil {
		return nil, nil, &net.AddrError{Err: "not an IPv4 address", Addr: addr.String()}
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socket", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("setsockopt", err)
	}
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], ip)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("getsockname", err)
	}
	in4 := got.(*unix.SockaddrInet4)
	return heldFD(fd), &net.TCPAddr{IP: net.IP(in4.Addr[:]).To16(), Port: in4.Port}, nil
}

type heldFD int

func (fd heldFD) Close() error { return unix.Close(int(fd)) }
