package ui

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DisplayReachable reports whether the X or Wayland display named in the
// environment accepts connections. A stale $DISPLAY (an ssh session whose
// forwarding is gone, a desktop that was logged out) would make zenity
// fail in a way that looks like the player pressing Cancel.
func DisplayReachable(getenv func(string) string) bool {
	if w := getenv("WAYLAND_DISPLAY"); w != "" {
		p := w
		if !filepath.IsAbs(p) {
			p = filepath.Join(getenv("XDG_RUNTIME_DIR"), w)
		}
		if dialOK("unix", p) {
			return true
		}
	}
	d := getenv("DISPLAY")
	if d == "" {
		return false
	}
	network, addrs := xAddrs(d)
	for _, a := range addrs {
		if dialOK(network, a) {
			return true
		}
	}
	return false
}

// xAddrs turns $DISPLAY ("[host]:N[.screen]") into the sockets an X
// client tries: the local socket file and its abstract twin, or TCP port
// 6000+N on a host.
func xAddrs(d string) (network string, addrs []string) {
	i := strings.LastIndex(d, ":")
	if i < 0 {
		return "", nil
	}
	host, num := d[:i], d[i+1:]
	num, _, _ = strings.Cut(num, ".")
	n, err := strconv.Atoi(num)
	if err != nil {
		return "", nil
	}
	switch {
	case strings.HasPrefix(host, "/"):
		// XQuartz-style: the socket's path is in the name.
		return "unix", []string{d}
	case host == "" || host == "unix":
		sock := "/tmp/.X11-unix/X" + num
		return "unix", []string{sock, "@" + sock}
	}
	return "tcp", []string{net.JoinHostPort(host, strconv.Itoa(6000+n))}
}

func dialOK(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
