// Package netdelay is a TCP proxy that delays every byte by a fixed time in
// each direction, and optionally caps the bandwidth: a network with a real
// round-trip time on loopback, where the kernel offers no netem.
package netdelay

import (
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its own loopback address to a target.
type Proxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	rate   int64 // bytes per second in each direction; 0 = unlimited

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Start listens on 127.0.0.1 and forwards to target (host:port), delaying
// each direction by oneWay, so a round trip takes 2*oneWay more than on
// loopback. bytesPerSec > 0 caps each direction of each connection.
func Start(target string, oneWay time.Duration, bytesPerSec int64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, delay: oneWay, rate: bytesPerSec, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, cuts every open connection and waits for them.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client) }()
	go func() { defer wg.Done(); p.pipe(client, server) }()
	wg.Wait()
	client.Close()
	server.Close()
	p.track(client, false)
	p.track(server, false)
}

// chunk is data read at one moment, due at another.
type chunk struct {
	due  time.Time
	data []byte // nil: the source ended
}

// pipe copies src to dst, each chunk delivered p.delay after it was read.
// Reading goes on while earlier chunks wait, so the delay adds latency,
// not a bandwidth limit.
func (p *Proxy) pipe(dst, src net.Conn) {
	queue := make(chan chunk, 4096)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- chunk{due: time.Now().Add(p.delay), data: buf[:n]}
			}
			if err != nil {
				queue <- chunk{due: time.Now().Add(p.delay)}
				return
			}
		}
	}()
	broken := false
	for c := range queue {
		if broken {
			continue // drain, so the reader never blocks
		}
		time.Sleep(time.Until(c.due))
		if c.data == nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			continue
		}
		if p.rate > 0 {
			// The time the chunk takes on a link of this rate.
			time.Sleep(time.Duration(int64(len(c.data)) * int64(time.Second) / p.rate))
		}
		if _, err := dst.Write(c.data); err != nil {
			broken = true
			src.Close()
		}
	}
}
