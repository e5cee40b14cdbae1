package ceiling

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// WaitReady polls the relay at relayURL (ws://host:port) until its agent is attached, ctx
// ends or timeout passes.
func WaitReady(ctx context.Context, relayURL string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := "http" + strings.TrimPrefix(strings.TrimSuffix(relayURL, "/"), "ws") + "/ready"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("ceiling: ready check: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ceiling: relay %s not ready (last: %v, status %v): %w", relayURL, err, statusOf(resp), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func statusOf(r *http.Response) any {
	if r == nil {
		return "none"
	}
	return r.StatusCode
}

// Local is the relay and the echo agent as goroutines of this process, on loopback TCP: the
// one-process form of the ceiling (callers dial URL from the same process).
type Local struct {
	URL    string
	cancel context.CancelFunc
	relay  chan error
	echo   chan error
}

// StartLocal starts a relay on 127.0.0.1 and an echo agent attached to it, and returns once
// the agent is attached.
func StartLocal(ctx context.Context, cfg Config) (*Local, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ceiling: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	lo := &Local{URL: "ws://" + l.Addr().String(), cancel: cancel, relay: make(chan error, 1), echo: make(chan error, 1)}
	go func() { lo.relay <- NewRelay(cfg).Serve(ctx, l) }()
	go func() { lo.echo <- RunEcho(ctx, lo.URL, cfg) }()
	if err := WaitReady(ctx, lo.URL, 10*time.Second); err != nil {
		return nil, errors.Join(err, lo.Close())
	}
	return lo, nil
}

// Close stops the echo agent and the relay and waits for both.
func (lo *Local) Close() error {
	lo.cancel()
	return errors.Join(<-lo.echo, <-lo.relay)
}
