package node

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fame-go/fame/envelope"
)

// servedStreams are the streams this node is answering, by the request's corrId. Under
// at-most-once the items go out without waiting for acks, but the sentinel still nacks an
// item it refuses (a signature under an expired certificate, the caller's queue full) to our
// __sys__ inbox with that corrId. The nack ends the stream with an error reply: the items
// after a refused one must not reach the caller as if nothing were missing.
type servedStreams struct {
	mu sync.Mutex
	m  map[string]*servedStream
}

type servedStream struct {
	refused atomic.Pointer[NackError]
}

// add registers a stream; nil when another stream with the same corrId is being answered
// (that one keeps the nacks: corrIds are random, a clash is a confused or hostile caller).
func (s *servedStreams) add(corrID string) *servedStream {
	if corrID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.m[corrID]; taken {
		return nil
	}
	if s.m == nil {
		s.m = map[string]*servedStream{}
	}
	st := &servedStream{}
	s.m[corrID] = st
	return st
}

func (s *servedStreams) remove(corrID string, st *servedStream) {
	if st == nil {
		return
	}
	s.mu.Lock()
	if s.m[corrID] == st {
		delete(s.m, corrID)
	}
	s.mu.Unlock()
}

// nacked records a negative ack for an item of the stream corrID; false when no stream of
// ours has that corrId.
func (s *servedStreams) nacked(corrID string, nack *NackError) bool {
	s.mu.Lock()
	st := s.m[corrID]
	s.mu.Unlock()
	if st == nil {
		return false
	}
	st.refused.CompareAndSwap(nil, nack)
	return true
}

// err is the refusal of an item sent so far, or nil.
func (st *servedStream) err() error {
	if st == nil {
		return nil
	}
	if nack := st.refused.Load(); nack != nil {
		return fmt.Errorf("%w: an earlier item was refused: %w", ErrReplyRefused, nack)
	}
	return nil
}

// replyNack routes a nack that answers no pending exchange of ours to the stream whose item
// it refuses: our replies name our __sys__ inbox as replyTo.
func (n *Node) replyNack(env *envelope.Envelope, a envelope.Ack) {
	if a.OK || env.CorrID == "" {
		return
	}
	if participant, _, _ := envelope.SplitInbox(env.To); participant != "__sys__" {
		return
	}
	if n.served.nacked(env.CorrID, &NackError{Code: a.Code, Reason: a.Reason}) {
		n.log.Warn("stream item refused on its way, ending the stream", "corrId", env.CorrID, "code", a.Code, "reason", a.Reason)
	}
}
