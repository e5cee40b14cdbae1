package node

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/internal/corkconn"
)

// corkingClient returns an HTTP client for one WebSocket handshake whose connection is a
// corkconn, reported into got, so that the link's writer can send a batch of queued
// envelopes with one write(2) instead of one per envelope. It keeps base's settings (TLS
// roots, proxy, its own dialer): only the dial is wrapped. A base whose Transport is not an
// *http.Transport is used unchanged (got stays nil: writes are then not batched).
func corkingClient(base *http.Client, got *atomic.Pointer[corkconn.Conn]) *http.Client {
	var tr *http.Transport
	switch t := baseTransport(base).(type) {
	case *http.Transport:
		tr = t.Clone()
	default:
		return base
	}
	onConn := func(c *corkconn.Conn) { got.Store(c) }
	if inner := tr.DialContext; inner != nil {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := inner(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := corkconn.Wrap(c)
			onConn(cc)
			return cc, nil
		}
	} else {
		tr.DialContext = corkconn.Dialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, onConn)
	}
	c := &http.Client{Transport: tr}
	if base != nil {
		c.CheckRedirect, c.Jar, c.Timeout = base.CheckRedirect, base.Jar, base.Timeout
	}
	return c
}

func baseTransport(c *http.Client) http.RoundTripper {
	if c == nil || c.Transport == nil {
		return http.DefaultTransport
	}
	return c.Transport
}
