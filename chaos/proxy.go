package chaos

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// slowProxy is the slow-reading client's way to the sentinel: a loopback TCP relay whose
// sentinel-to-client direction, while slow is set, reads slowReadChunk bytes every
// slowReadEvery. The sentinel then sees a real slow reader (its socket's send buffer fills),
// which is what its slow-consumer limits are for, while the client itself stays an ordinary
// node.
type slowProxy struct {
	l      net.Listener
	target string
	slow   atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

const (
	slowReadChunk = 512
	slowReadEvery = 100 * time.Millisecond // about 5 KB/s
)

func newSlowProxy(target string) (*slowProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &slowProxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *slowProxy) addr() string { return p.l.Addr().String() }

func (p *slowProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *slowProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// accept owns the listener; it ends when close closes it.
func (p *slowProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 3*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c) || !p.track(up) {
			_ = c.Close()
			_ = up.Close()
			return
		}
		p.wg.Add(2)
		// Each direction's goroutine ends when either side closes (it closes both).
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(up, c)
			p.untrack(up)
			p.untrack(c)
		}()
		go func() {
			defer p.wg.Done()
			p.copyDown(c, up)
			p.untrack(up)
			p.untrack(c)
		}()
	}
}

// copyDown relays the sentinel's bytes to the client, slowly while slow is set.
func (p *slowProxy) copyDown(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n := len(buf)
		if p.slow.Load() {
			n = slowReadChunk
			time.Sleep(slowReadEvery)
		}
		r, err := src.Read(buf[:n])
		if r > 0 {
			if _, werr := dst.Write(buf[:r]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

// close stops accepting, cuts every relayed connection and waits for the goroutines.
func (p *slowProxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
