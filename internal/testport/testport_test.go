//go:build unix

package testport

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// A reserved port refuses connections, keeps listeners without address
// reuse off, and lets the program it is for listen (with reuse, as
// net.Listen does), and listen again after a stop.
func TestReserve(t *testing.T) {
	addr, held, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a reserved port: %v, want connection refused", err)
	}
	if ln, err := ListenPlain(addr); err == nil {
		ln.Close()
		t.Fatal("a reserved port was free to take")
	}
	for range 2 { // a start, and a restart after a stop
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the program cannot listen on its reserved port: %v", err)
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial the program on its reserved port: %v", err)
		}
		c.Close()
		ln.Close()
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
}

// Hold takes a port nothing listens on, fails on one a server has, and
// gives the port back when closed.
func TestHold(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if c, err := Hold(addr); err == nil {
		c.Close()
		t.Fatal("Hold took the port of a listening server")
	}
	ln.Close()
	held, err := Hold(addr)
	if err != nil {
		t.Fatal(err)
	}
	if ln, err := ListenPlain(addr); err == nil {
		ln.Close()
		t.Fatal("a held port was free to take")
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	// No connection left TIME_WAIT here: the port is free at once.
	ln, err = ListenPlain(addr)
	if err != nil {
		t.Fatalf("a released port is still taken: %v", err)
	}
	ln.Close()
}
