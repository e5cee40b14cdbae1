package connengine

import "github.com/fame-go/fame/envelope"

// Stamper numbers the envelopes a connection sends, per flow: the first of a flow is seqId 0
// with FlowSyn, then 1, 2, .... Receivers do not enforce seqId order, so forgetting flows at
// MaxFlows only restarts their counters at SYN; the bound keeps a long-lived connection from
// growing without limit as flows come and go. Not safe for concurrent use: its owner
// serialises stamping with the order envelopes enter the engine, so that wire order is
// seqId order.
type Stamper struct {
	own    string // the connection's own flow, counted without a map lookup
	ownSeq int64
	seq    map[string]*int64 // pointer values: incrementing needs only a lookup, no allocation
}

// NewStamper numbers own (the connection's own flow) from ownNext on, other flows from 0.
func NewStamper(own string, ownNext int64) Stamper {
	return Stamper{own: own, ownSeq: ownNext}
}

// Next returns the (seqId, flowFlags) of the next envelope of flow.
func (s *Stamper) Next(flow []byte) (int64, envelope.FlowFlags) {
	if string(flow) == s.own {
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

// Flows is how many flows other than its own the stamper remembers.
func (s *Stamper) Flows() int { return len(s.seq) }
