package ceiling

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// ErrClosed: the caller's connection is gone.
var ErrClosed = errors.New("ceiling: caller closed")

// Caller is one client connection shared by concurrent callers, like one node.Node.
type Caller struct {
	ws                                          *websocket.Conn
	snd                                         *sender
	prefix                                      string // id prefix, unique per caller connection
	reqHead, reqMid1, reqMid2, reqMid3, reqTail string

	seq atomic.Uint64

	mu      sync.Mutex
	pending map[string]chan error // corrId -> the waiting call (buffered 1)
	err     error                 // why the reader stopped; set once

	done chan struct{} // closed when the reader goroutine has exited
}

// DialCaller attaches a caller named id (unique per relay) at relayURL.
func DialCaller(ctx context.Context, relayURL, id string, cfg Config) (*Caller, error) {
	u := strings.TrimSuffix(relayURL, "/") + "/client?id=" + url.QueryEscape(id)
	ws, snd, err := cfg.dialSender(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("ceiling caller %s: dial: %w", id, err)
	}
	reply := string(appendString(nil, ReplyAddress(id)))
	c := &Caller{
		ws:      ws,
		snd:     snd,
		prefix:  id,
		pending: map[string]chan error{},
		done:    make(chan struct{}),
		// The request a real client sends for add(3, 4), with its id, traceId, corrId and
		// JSON-RPC id filled in per call.
		reqHead: `{"version":"1.0","id":"`,
		reqMid1: `","sid":"4lEOwRnZ5AggQ7Pc3eNzFk","traceId":"`,
		reqMid2: `","to":"math@fame.fabric","replyTo":` + reply + `,"rtype":2,"corrId":"`,
		reqMid3: `","flowId":"8G61SDKE5aDqL3mA","seqId":1,"flowFlags":0,"frame":{"type":"Data","payload":{"jsonrpc":"2.0","id":"`,
		reqTail: `","method":"add","params":{"x":3,"y":4}}},"ts":"2026-11-23T03:40:53.023Z"}`,
	}
	go c.read()
	return c, nil
}

// read delivers each reply to the call waiting for its corrId. A reply nobody waits for (the
// call timed out) is dropped.
func (c *Caller) read() {
	defer close(c.done)
	err := pump(context.Background(), c.ws, func(_ []byte, m map[string]any) error {
		corr, _ := m["corrId"].(string)
		if !resultIs7(m) {
			return fmt.Errorf("%w: reply %q without result 7", ErrBadEnvelope, corr)
		}
		c.mu.Lock()
		ch := c.pending[corr]
		delete(c.pending, corr)
		c.mu.Unlock()
		if ch != nil {
			ch <- nil
		}
		return nil
	})
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %w", ErrClosed, err)
	for k, ch := range c.pending {
		delete(c.pending, k)
		ch <- c.err
	}
	c.mu.Unlock()
	c.ws.CloseNow()
}

func resultIs7(m map[string]any) bool {
	f, _ := m["frame"].(map[string]any)
	p, _ := f["payload"].(map[string]any)
	r, _ := p["result"].(float64)
	return r == 7
}

// Call sends one add request and waits for its reply; it is a loadgen.CallFunc and safe for
// concurrent use.
func (c *Caller) Call(ctx context.Context, _ int) error {
	n := c.seq.Add(1)
	var idb [32]byte
	id := fmt.Appendf(idb[:0], "%s%010d", c.prefix, n)
	msg := make([]byte, 0, 512)
	msg = append(msg, c.reqHead...)
	msg = append(msg, id...)
	msg = append(msg, c.reqMid1...)
	msg = append(msg, id...)
	msg = append(msg, c.reqMid2...)
	msg = append(msg, id...)
	msg = append(msg, c.reqMid3...)
	msg = append(msg, id...)
	msg = append(msg, c.reqTail...)

	key := string(id)
	ch := make(chan error, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.pending[key] = ch
	c.mu.Unlock()
	if err := c.snd.send(ctx, msg, true); err != nil {
		c.forget(key)
		return fmt.Errorf("ceiling call: write: %w", err)
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		c.forget(key)
		return ctx.Err()
	}
}

func (c *Caller) forget(key string) {
	c.mu.Lock()
	delete(c.pending, key)
	c.mu.Unlock()
}

// Close ends the connection and waits for the reader. The close handshake's own outcome is
// not reported: the relay may already be gone when a benchmark tears down.
func (c *Caller) Close() {
	c.snd.close()
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}
