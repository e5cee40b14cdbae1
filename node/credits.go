package node

import (
	"sync"

	"github.com/fame-go/fame/envelope"
)

// maxHeld bounds the envelopes the writer holds for flows that ran out of credits. Past it
// the writer stops taking new envelopes from the send queue (callers then wait on their
// context) but keeps applying grants, so it can always drain.
const maxHeld = 4096

// creditGrants carries CreditUpdates from the reader to the writer without ever blocking
// the reader: grants accumulate under a mutex and a 1-slot channel wakes the writer.
type creditGrants struct {
	mu      sync.Mutex
	pending map[string]int
	wake    chan struct{}
}

func newCreditGrants() *creditGrants {
	return &creditGrants{pending: map[string]int{}, wake: make(chan struct{}, 1)}
}

// add records a grant (reader side).
func (g *creditGrants) add(flow string, credits int) {
	if flow == "" || credits <= 0 {
		return
	}
	g.mu.Lock()
	g.pending[flow] = min(g.pending[flow]+credits, creditWindow)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// take hands the accumulated grants to the writer.
func (g *creditGrants) take() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) == 0 {
		return nil
	}
	out := g.pending
	g.pending = map[string]int{}
	return out
}

// senderCredits is the writer-owned sender side of credit flow control (fame-protocol
// §5.5): every flow starts with creditWindow credits, each non-CreditUpdate envelope costs
// one, grants add (clamped to the window). Envelopes of a flow at zero wait in that flow's
// FIFO, so other flows keep going and per-flow order is kept. Not safe for concurrent use:
// only the writer goroutine touches it.
type senderCredits struct {
	credits map[string]int
	held    map[string][]outItem
	nHeld   int
}

func newSenderCredits() *senderCredits {
	return &senderCredits{credits: map[string]int{}, held: map[string][]outItem{}}
}

// admit decides whether it may be written now; if not it is held.
func (c *senderCredits) admit(it outItem) bool {
	if it.raw || it.env.FrameType() == envelope.TypeCreditUpdate {
		return true
	}
	f := it.env.FlowID
	if len(c.held[f]) > 0 {
		c.hold(f, it)
		return false
	}
	left, seen := c.credits[f]
	if !seen {
		left = creditWindow
	}
	if left <= 0 {
		c.hold(f, it)
		return false
	}
	c.credits[f] = left - 1
	return true
}

func (c *senderCredits) hold(f string, it outItem) {
	c.held[f] = append(c.held[f], it)
	c.nHeld++
}

// grant applies CreditUpdates and returns the held envelopes that may now go, in order.
func (c *senderCredits) grant(grants map[string]int) []outItem {
	var out []outItem
	for f, n := range grants {
		cur, seen := c.credits[f]
		if !seen {
			cur = creditWindow
		}
		cur = min(cur+n, creditWindow)
		q := c.held[f]
		k := min(cur, len(q))
		out = append(out, q[:k]...)
		cur -= k
		c.credits[f] = cur
		c.nHeld -= k
		if k == len(q) {
			delete(c.held, f)
		} else {
			c.held[f] = append([]outItem(nil), q[k:]...)
		}
	}
	return out
}

// full reports whether the writer should stop taking new envelopes.
func (c *senderCredits) full() bool { return c.nHeld >= maxHeld }
