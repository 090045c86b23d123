package netdelay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echo serves one connection at a time, writing back what it reads.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func TestRoundTripIsDelayedAndIntact(t *testing.T) {
	const oneWay = 40 * time.Millisecond
	p, err := Start(echo(t), oneWay, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != "ping" {
			t.Fatalf("echo came back as %q", got)
		}
		// A lower bound only: a loaded machine is slower, never faster.
		if d := time.Since(start); d < 2*oneWay {
			t.Fatalf("round trip took %v, less than the %v the proxy adds", d, 2*oneWay)
		}
	}

	// A large transfer arrives byte for byte, in order.
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	go func() { _, _ = c.Write(data) }()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("3 MiB through the proxy came back different")
	}
}

func TestRateCap(t *testing.T) {
	const rate = 256 << 10
	p, err := Start(echo(t), 0, rate)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 128<<10)
	start := time.Now()
	go func() { _, _ = c.Write(data) }()
	if _, err := io.ReadFull(c, make([]byte, len(data))); err != nil {
		t.Fatal(err)
	}
	// 128 KiB at 256 KiB/s takes half a second each way at least.
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("128 KiB at 256 KiB/s took %v", d)
	}
}

func TestCloseEndsOpenConnections(t *testing.T) {
	p, err := Start(echo(t), time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// The deadline only keeps a broken Close from hanging the test: a
	// read that merely timed out is a connection Close left open.
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection through a closed proxy was not ended: read %v", err)
	}
}
