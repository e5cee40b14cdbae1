package e2e

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// dialGate holds a node's dials (its WebSocket reconnects) while closed, so a test can order
// who re-attaches first after a sentinel restart.
type dialGate struct {
	mu   sync.Mutex
	open chan struct{} // closed while dials may go
}

func newDialGate() *dialGate {
	g := &dialGate{open: make(chan struct{})}
	close(g.open)
	return g
}

// hold makes the next dials wait until release.
func (g *dialGate) hold() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *dialGate) release() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}

// client is an HTTP client whose dials wait for the gate.
func (g *dialGate) client() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		select {
		case <-open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return d.DialContext(ctx, network, addr)
	}}}
}
