package wsengine

import (
	"github.com/fame-go/fame/envelope"
)

// MaxFlows bounds the flows a connection keeps counters for (Stamps, RecvCredits). A peer
// that opens more makes the connection forget them all at once: a forgotten flow starts
// again at seqId 0 with SYN, and its receive window starts afresh, which receivers accept
// (neither the reference nor we enforce the order of seqIds).
const MaxFlows = 8192

// Stamps numbers what a connection writes on each flow (fame-protocol §5.4): the first
// envelope of a flow gets seqId 0 and flowFlags SYN, the next ones 1, 2, ... Who stamps must
// hold a lock that also orders the writes, so that the wire order of a flow is its seqId
// order (the sentinel's seqMu, the node link's smu). The connection's own flow (Own) is kept
// outside the map: an idle connection's heartbeats and acks need none.
type Stamps struct {
	Own    string // the connection's own flow (its control traffic); "" for none
	ownSeq int64  // the next seqId on Own
	seq    map[string]*int64
}

// StartOwn records that n envelopes were already stamped on Own (the node's NodeAttach,
// written before the link ran, used seqId 0).
func (s *Stamps) StartOwn(n int64) { s.ownSeq = n }

// Next returns the stamp of the next envelope on flow.
func (s *Stamps) Next(flow []byte) (int64, envelope.FlowFlags) {
	if s.Own != "" && string(flow) == s.Own {
		v := s.ownSeq
		s.ownSeq++
		if v == 0 {
			return 0, envelope.FlowSyn
		}
		return v, 0
	}
	if n := s.seq[string(flow)]; n != nil {
		v := *n
		*n = v + 1
		return v, 0
	}
	if s.seq == nil {
		s.seq = make(map[string]*int64, 1)
	} else if len(s.seq) >= MaxFlows {
		clear(s.seq)
	}
	one := int64(1)
	s.seq[string(flow)] = &one
	return 0, envelope.FlowSyn
}

// Undo takes back the stamp seq that Next just gave flow, when the envelope it was for will
// not be written after all (its queue refused it): the next envelope gets the same number,
// and the flow shows no gap. Only the last stamp of a flow can be taken back, with the lock
// that Next was called under still held.
func (s *Stamps) Undo(flow []byte, seq int64) {
	if s.Own != "" && string(flow) == s.Own {
		s.ownSeq = seq
		return
	}
	if seq == 0 {
		delete(s.seq, string(flow))
		return
	}
	if n := s.seq[string(flow)]; n != nil {
		*n = seq
	}
}

// RecvCredits is the receiver side of credit flow control (fame-protocol §5.5): the sender
// has CreditWindow credits per flow, and after CreditThreshold envelopes of a flow the
// receiver grants a fresh window, before the sender runs out. The first flow a peer sends on
// is counted outside the map, so that a peer using one flow (an idle node's heartbeats)
// needs none. Not safe for concurrent use: the connection's reader owns it.
type RecvCredits struct {
	flow string
	left int
	more map[string]int
}

// Count counts one envelope received on flow (not a CreditUpdate, which the caller skips)
// and reports whether the sender must be granted CreditWindow credits now.
func (r *RecvCredits) Count(flow []byte) (grant bool) {
	inline := r.flow == string(flow)
	var n int
	switch {
	case inline:
		n = r.left
	case r.flow == "":
		r.flow, inline, n = string(flow), true, CreditWindow
	default:
		var ok bool
		if n, ok = r.more[string(flow)]; !ok {
			if r.more == nil {
				r.more = make(map[string]int, 1)
			} else if len(r.more) >= MaxFlows {
				clear(r.more)
			}
			n = CreditWindow
		}
	}
	n--
	if grant = n <= CreditWindow-CreditThreshold; grant {
		n = CreditWindow
	}
	if inline {
		r.left = n
	} else {
		r.more[string(flow)] = n
	}
	return grant
}

// Gate is the sender side of credit flow control for a connection that honours the peer's
// CreditUpdates (the node SDK; the sentinel routes without waiting on a destination and does
// not gate). Every flow starts with CreditWindow credits, each envelope costs one, a grant
// adds (clamped to the window). An envelope of a flow at zero, or of a flow that has
// envelopes held already, is held in that flow's FIFO, so other flows keep going and a
// flow's order is kept. What the gate holds is bounded (MaxHeld envelopes, maxBytes bytes):
// past it, senders that may wait wait for Room, the others are refused.
// Not safe for concurrent use: the caller's stamping lock guards it.
type Gate struct {
	credits   map[string]int
	held      map[string][]*[]byte
	nHeld     int
	heldBytes int64
	maxBytes  int64
	roomc     chan struct{} // made by a waiter (Room), closed when the gate is no longer full
}

// MaxHeld bounds the envelopes a gate holds for flows out of credits.
const MaxHeld = 4096

// NewGate returns a gate holding at most MaxHeld envelopes and maxBytes bytes.
func NewGate(maxBytes int64) *Gate {
	return &Gate{credits: map[string]int{}, held: map[string][]*[]byte{}, maxBytes: maxBytes}
}

// Admit spends a credit of flow for the encoded envelope b and reports true (write it now),
// or holds b (the gate takes it) and reports false. The caller checks Full first.
func (g *Gate) Admit(flow string, b *[]byte) bool {
	if q := g.held[flow]; len(q) > 0 {
		g.hold(flow, b)
		return false
	}
	left, seen := g.credits[flow]
	if !seen {
		left = CreditWindow
		if len(g.credits) >= MaxFlows {
			// Bounded like Stamps: a node replying on every client's flow would otherwise
			// keep a counter per flow for ever. A forgotten flow starts with a full window
			// again; one with envelopes held stays held (above) until its grant.
			clear(g.credits)
		}
	}
	if left <= 0 {
		g.hold(flow, b)
		return false
	}
	g.credits[flow] = left - 1
	return true
}

func (g *Gate) hold(flow string, b *[]byte) {
	g.held[flow] = append(g.held[flow], b)
	g.nHeld++
	g.heldBytes += int64(len(*b))
}

// Full reports whether the gate holds all it may: a sender must not stamp more until Room.
func (g *Gate) Full() bool { return g.nHeld >= MaxHeld || g.heldBytes >= g.maxBytes }

// Held is how many envelopes the gate holds.
func (g *Gate) Held() int { return g.nHeld }

// Grant applies a CreditUpdate of n credits for flow and appends to dst the held envelopes
// that may now be written, in their order.
func (g *Gate) Grant(flow string, n int, dst []*[]byte) []*[]byte {
	if n <= 0 {
		return dst
	}
	cur, seen := g.credits[flow]
	if !seen {
		cur = CreditWindow
	}
	cur = min(cur+n, CreditWindow)
	q := g.held[flow]
	k := min(cur, len(q))
	for _, b := range q[:k] {
		g.heldBytes -= int64(len(*b))
	}
	dst = append(dst, q[:k]...)
	g.credits[flow] = cur - k
	g.nHeld -= k
	if k == len(q) {
		delete(g.held, flow)
	} else {
		clear(q[:k])
		g.held[flow] = q[k:]
	}
	if k > 0 && g.roomc != nil && !g.Full() {
		close(g.roomc)
		g.roomc = nil
	}
	return dst
}

// Room returns a channel closed once the gate is no longer full (after a grant, or Drop).
func (g *Gate) Room() <-chan struct{} {
	if g.roomc == nil {
		g.roomc = make(chan struct{})
	}
	return g.roomc
}

// Drop gives back every held envelope's buffer (the connection ended) and wakes the waiters.
func (g *Gate) Drop(put func(*[]byte)) {
	for f, q := range g.held {
		for _, b := range q {
			put(b)
		}
		delete(g.held, f)
	}
	g.nHeld, g.heldBytes = 0, 0
	if g.roomc != nil {
		close(g.roomc)
		g.roomc = nil
	}
}

// Spent records n credits of flow spent outside the gate (the node's NodeAttach, written
// before its link ran).
func (g *Gate) Spent(flow string, n int) {
	left, seen := g.credits[flow]
	if !seen {
		left = CreditWindow
	}
	g.credits[flow] = left - n
}

// Refund gives back the credit Admit just spent for an envelope that was not written after
// all (its queue refused it).
func (g *Gate) Refund(flow string) {
	if left, seen := g.credits[flow]; seen {
		g.credits[flow] = min(left+1, CreditWindow)
	}
}
