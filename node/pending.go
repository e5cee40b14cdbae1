package node

import (
	"encoding/json"
	"fmt"
	"sync"
)

type eventKind int

const (
	evReply    eventKind = iota // a Data reply (or stream item) with the call's corrId
	evAck                       // a positive ack (DeliveryAck or a control *Ack) for a sent envelope
	evNack                      // a negative ack
	evFail                      // the exchange cannot complete (err says why)
	evReopen                    // the secure channel the request went over was closed
	evLinkLost                  // the connection the request went over died (link says which)
)

type event struct {
	kind    eventKind
	payload json.RawMessage
	// from and sid are a reply's replyTo and sid, checked against each other only when a
	// caller asks who answered (Responder), so that a reply costs no hashing.
	from, sid string
	nack      *NackError
	err       error
	ref       string // acks and nacks: the envelope id they refer to
	link      *link  // evLinkLost: the link that died
}

// maxQueued bounds a mailbox: a stream whose consumer stopped reading must not grow without
// limit; past it the stream fails.
const maxQueued = 1 << 14

// waiter is the mailbox of one outstanding exchange (a call, a stream, a bind, a reply that
// waits for its ack). The reader pushes without ever blocking; the owner pops.
type waiter struct {
	corrID string
	mu     sync.Mutex
	envIDs []string // every envelope id this exchange sent (acks and nacks refer to them)
	queue  []event
	over   bool
	cid    string // secure channel of the last request sent (channel encryption)
	// sentOn is the link the last request went over (calls only): when it dies with the
	// request unanswered, linkLost tells the call, which re-sends or fails at once instead of
	// waiting for a reply that died with the connection.
	sentOn *link
	// closedCID is the channel a SecureClose took from under this exchange (channelClosed):
	// a reply still encrypted for it answers the superseded send; the re-send answers anew.
	closedCID string
	notify    chan struct{}
	// removed: the pending table no longer counts this waiter (guarded by the table's mu).
	removed bool
}

func (w *waiter) setCID(cid string) {
	w.mu.Lock()
	w.cid = cid
	w.mu.Unlock()
}

// closeCID marks the channel of the last send closed, as channelClosed does for a
// SecureClose, and returns it ("" for none); first is false when a SecureClose marked it
// already (its evReopen is queued for the call).
func (w *waiter) closeCID() (cid string, first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cid == "" {
		return "", false
	}
	if w.closedCID == w.cid {
		return w.cid, false
	}
	w.closedCID = w.cid
	return w.cid, true
}

// setSent records the link and channel ("" for none) of the request about to be sent.
func (w *waiter) setSent(l *link, cid string) {
	w.mu.Lock()
	w.sentOn, w.cid = l, cid
	w.mu.Unlock()
}

func (w *waiter) push(ev event) {
	w.mu.Lock()
	if len(w.queue) >= maxQueued {
		w.over = true
	} else {
		w.queue = append(w.queue, ev)
	}
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// pop returns the next event, or ok=false when there is none.
func (w *waiter) pop() (ev event, overflow, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return event{}, w.over, false
	}
	ev = w.queue[0]
	w.queue[0] = event{}
	w.queue = w.queue[1:]
	return ev, false, true
}

// pendingTable finds waiters by corrId (replies, control acks) and by envelope id (delivery
// acks and nacks carry refId).
type pendingTable struct {
	mu     sync.Mutex
	byCorr map[string]*waiter
	byEnv  map[string]*waiter
	live   int // waiters added and not yet removed
	max    int // Config.MaxPending; 0 = unbounded
}

func newPendingTable() *pendingTable {
	return &pendingTable{byCorr: map[string]*waiter{}, byEnv: map[string]*waiter{}}
}

// add registers a waiter; corrID may be "" for exchanges matched by envelope id only. Past
// the cap it fails with ErrTooManyPending: an exchange nobody tracks would wait for its
// timeout with every answer dropped, so the caller is told at once instead.
// Hop-local control exchanges (binds, uncapped) are few and must not fail under call load.
func (t *pendingTable) add(corrID string, capped bool) (*waiter, error) {
	w := &waiter{corrID: corrID, notify: make(chan struct{}, 1)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if capped && t.max > 0 && t.live >= t.max {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyPending, t.max)
	}
	t.live++
	if corrID != "" {
		t.byCorr[corrID] = w
	}
	return w, nil
}

// track records that w sent the envelope id.
func (t *pendingTable) track(w *waiter, envID string) {
	t.mu.Lock()
	t.byEnv[envID] = w
	t.mu.Unlock()
	w.mu.Lock()
	w.envIDs = append(w.envIDs, envID)
	w.mu.Unlock()
}

func (t *pendingTable) remove(w *waiter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.removed {
		return
	}
	w.removed = true
	t.live--
	if w.corrID != "" && t.byCorr[w.corrID] == w {
		delete(t.byCorr, w.corrID)
	}
	w.mu.Lock()
	for _, id := range w.envIDs {
		if t.byEnv[id] == w {
			delete(t.byEnv, id)
		}
	}
	w.mu.Unlock()
}

func (t *pendingTable) byCorrID(id string) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byCorr[id]
}

func (t *pendingTable) byEnvID(id string) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byEnv[id]
}

func (t *pendingTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byCorr) + len(t.byEnv)
}

// channelClosed tells every exchange whose request went over channel cid, once: a second
// SecureClose for the same channel (the sentinel's for a dead replica, then the one another
// replica sends when a request on it reaches a node that does not hold it) arrives while the
// call is still re-opening, before its re-send moves it to the new channel, and said nothing
// new; told again, the call failed as if its re-send's channel had closed too.
func (t *pendingTable) channelClosed(cid string) {
	t.mu.Lock()
	var hit []*waiter
	for _, w := range t.byCorr {
		w.mu.Lock()
		if w.cid == cid && w.closedCID != cid {
			hit = append(hit, w)
			w.closedCID = cid
		}
		w.mu.Unlock()
	}
	t.mu.Unlock()
	for _, w := range hit {
		w.push(event{kind: evReopen})
	}
}

// linkLost tells every call whose last request went over l that l died.
func (t *pendingTable) linkLost(l *link) {
	t.mu.Lock()
	var hit []*waiter
	for _, w := range t.byCorr {
		w.mu.Lock()
		if w.sentOn == l {
			hit = append(hit, w)
		}
		w.mu.Unlock()
	}
	t.mu.Unlock()
	for _, w := range hit {
		w.push(event{kind: evLinkLost, link: l})
	}
}

// supersededOn reports whether the exchange corrID was re-sent because channel cid closed
// under it (a reply on cid is then for the first send and cannot be read any more).
func (t *pendingTable) supersededOn(corrID, cid string) bool {
	w := t.byCorrID(corrID)
	if w == nil || cid == "" {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closedCID == cid
}
