package node

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// CodeReplyNotKept is the nack code of a re-sent request (same envelope id) whose request
// this node already ran but whose reply it no longer holds: too large to keep, or forgotten
// by the bounded reply cache. The handler is never run twice, so the caller is told at once instead of
// waiting for its timeout.
const CodeReplyNotKept = "REPLY_NOT_KEPT"

// RefusedReplyNotKept counts the re-sends answered with CodeReplyNotKept.
const RefusedReplyNotKept = "reply_not_kept"

// replyEntryOverhead is what one kept entry costs beyond its payloads (ids, headers, list
// and map cells), charged so that many tiny replies still respect ReplyCacheBytes.
const replyEntryOverhead = 256

// maxResendWaiters bounds the re-sends remembered while a request runs: the latest ones
// are kept (the caller's newest replyTo is where it is now).
const maxResendWaiters = 4

// maxReplaysInFlight bounds the goroutines re-sending kept replies at once; past it a
// re-send is dropped unanswered (not even acknowledged), so the caller's next re-send tries again.
const maxReplaysInFlight = 16

// replyCache keeps the replies of the requests this node ran, by the request's envelope id,
// so that a caller's re-send of a request whose reply was lost (its sentinel died with the
// reply, or it moved to another sentinel) gets the reply again instead of only an ack: the
// handler ran once and is not run again. Finished entries are an LRU bounded in count, bytes
// and age; requests still running are in running, bounded by the handler pool.
type replyCache struct {
	mu       sync.Mutex
	running  map[string]*replyEntry
	kept     *simplelru.LRU[string, *replyEntry]
	bytes    int // kept entries' cost
	maxBytes int
	maxEntry int // an entry over this is dropped (the id is remembered as "not kept")
	ttl      time.Duration
	now      func() time.Time
	metrics  *replyMetrics // nil: not exported
}

// replyEntry is one request this node ran or is running.
type replyEntry struct {
	owner   string // the request's sender ("kid:…", "sid:…"; "" on open nodes)
	replyTo string // the original replyTo and corrId: a waiter with both gets the reply anyway
	corrID  string
	replies []keptReply
	dropped bool // a reply was too large to keep: the request ran, its replies are gone
	cost    int
	expires time.Time
	waiters []resendTo // re-sends that came while the request ran
}

// keptReply is one reply envelope's content; re-sent with the same envelope id, so that a
// caller that did get the original drops the copy as a duplicate.
type keptReply struct {
	id      string
	payload json.RawMessage
	meta    []byte
}

// resendTo is a re-send to answer: its envelope (replyTo, corrId, traceId) and the channel
// it came on.
type resendTo struct {
	env *envelope.Envelope
	ch  *security.Channel
}

// resendAction is what a re-send gets.
type resendAction int

const (
	resendUnknown resendAction = iota // not in the cache
	resendForeign                     // another sender's id: acknowledged as before, never answered
	resendRunning                     // still running: acknowledged, answered when it completes
	resendReplay                      // completed: its replies are sent again
	resendNotKept                     // completed, replies not kept: CodeReplyNotKept nack
)

// newReplyCache returns nil when size < 0 (the cache is off).
func newReplyCache(size, maxBytes int, ttl time.Duration) *replyCache {
	if size < 0 {
		return nil
	}
	c := &replyCache{running: map[string]*replyEntry{}, maxBytes: maxBytes, maxEntry: max(maxBytes/16, 1024), ttl: ttl, now: time.Now}
	c.kept, _ = simplelru.NewLRU[string, *replyEntry](size, func(_ string, e *replyEntry) { c.bytes -= e.cost })
	return c
}

// begin records that the request env (sent by owner) is about to run.
func (c *replyCache) begin(env *envelope.Envelope, owner string) {
	if c == nil || env.ID == "" || env.ReplyTo == "" {
		return
	}
	c.mu.Lock()
	c.running[env.ID] = &replyEntry{owner: owner, replyTo: env.ReplyTo, corrID: env.CorrID}
	c.mu.Unlock()
}

// abort forgets a request that was not run (the handler pool refused it).
func (c *replyCache) abort(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.running, id)
	c.mu.Unlock()
}

// replyRecorder collects one request's replies on its handler goroutine (no lock per reply).
type replyRecorder struct {
	replies []keptReply
	cost    int
	max     int
	dropped bool
}

func (c *replyCache) recorder(env *envelope.Envelope) *replyRecorder {
	if c == nil || env.ID == "" || env.ReplyTo == "" {
		return nil
	}
	return &replyRecorder{cost: replyEntryOverhead + len(env.ID), max: c.maxEntry}
}

func (r *replyRecorder) add(id string, payload json.RawMessage, meta []byte) {
	if r == nil || r.dropped {
		return
	}
	r.cost += len(id) + len(payload) + len(meta) + 48
	if r.cost > r.max {
		r.dropped, r.replies = true, nil
		return
	}
	r.replies = append(r.replies, keptReply{id: id, payload: payload, meta: meta})
}

// finish moves the request id from running to the kept replies and returns the re-sends
// that came while it ran, with the entry they are to be answered from.
func (c *replyCache) finish(id string, r *replyRecorder) (*replyEntry, []resendTo) {
	if c == nil || r == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.running[id]
	if e == nil {
		return nil, nil
	}
	delete(c.running, id)
	waiters := e.waiters
	e.waiters = nil
	e.replies, e.dropped = r.replies, r.dropped
	e.cost = r.cost
	if e.dropped {
		e.cost = replyEntryOverhead + len(id)
	}
	now := c.now()
	e.expires = now.Add(c.ttl)
	c.kept.Remove(id) // the eviction callback uncounts it
	c.kept.Add(id, e)
	c.bytes += e.cost
	// Evict over the byte bound, and the expired oldest on the way.
	for c.kept.Len() > 0 {
		_, oldest, _ := c.kept.GetOldest()
		if c.bytes <= c.maxBytes && now.Before(oldest.expires) {
			break
		}
		c.kept.RemoveOldest()
	}
	c.metrics.size(c.kept.Len(), c.bytes)
	return e, waiters
}

// resent looks up a re-send of request env from sender. A re-send that comes while the
// request runs is remembered (the latest maxResendWaiters) and answered when it completes.
// Only the original sender's re-send is answered: under the signing profiles that is the
// same signing key (kept when a caller moves to another sentinel), so nobody who merely
// learned an envelope id gets a copy of someone else's reply.
func (c *replyCache) resent(env *envelope.Envelope, sender string, ch *security.Channel) (resendAction, *replyEntry) {
	if c == nil || env.ID == "" || env.ReplyTo == "" {
		return resendUnknown, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.running[env.ID]; e != nil {
		if e.owner != sender {
			return resendForeign, nil
		}
		for _, w := range e.waiters {
			if w.env.ReplyTo == env.ReplyTo && w.env.CorrID == env.CorrID {
				return resendRunning, e
			}
		}
		if len(e.waiters) >= maxResendWaiters {
			e.waiters = append(e.waiters[:0], e.waiters[1:]...)
		}
		e.waiters = append(e.waiters, resendTo{env: env, ch: ch})
		return resendRunning, e
	}
	e, ok := c.kept.Get(env.ID)
	if !ok {
		return resendUnknown, nil
	}
	if !c.now().Before(e.expires) {
		c.kept.Remove(env.ID)
		c.metrics.size(c.kept.Len(), c.bytes)
		return resendUnknown, nil
	}
	if e.owner != sender {
		return resendForeign, nil
	}
	if e.dropped {
		return resendNotKept, e
	}
	return resendReplay, e
}

// len reports the kept entries and their cost (tests).
func (c *replyCache) len() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kept.Len(), c.bytes
}

// onResend answers a re-sent request (an envelope id this node has seen; reader goroutine)
// from the reply cache: a completed request's replies are sent again to the re-send's
// replyTo with its corrId, a running one is acknowledged and answered when it completes. A
// re-send the cache does not know is acknowledged as before, or nacked CodeReplyNotKept when
// it is a request to one of our registrations whose replies were forgotten.
func (n *Node) onResend(l *link, env *envelope.Envelope, ch *security.Channel, sender string) {
	wantsAck := env.RType.Has(envelope.RTypeAck) && env.ReplyTo != ""
	act, e := n.replies.resent(env, sender, ch)
	switch act {
	case resendRunning:
		n.replies.metrics.resend(resendResultRunning)
		if wantsAck {
			n.sendAck(l, env)
		}
	case resendReplay:
		select {
		case n.replaySem <- struct{}{}:
		default:
			// Not even acknowledged, so the caller sends again.
			n.replies.metrics.resend(resendResultBusy)
			n.log.Debug("too many replies being re-sent, leaving this re-send to the next", "id", env.ID, "from", env.ReplyTo)
			return
		}
		// Acknowledged too, as every at-least-once delivery is (the reference's sender waits
		// for it); the reply follows.
		n.replies.metrics.resend(resendResultReplayed)
		if wantsAck {
			n.sendAck(l, env)
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-n.replaySem }()
			n.replay(l, env, ch, e.replies)
		}()
	case resendNotKept:
		n.replies.metrics.resend(resendResultNotKept)
		n.replyNotKept(l, env, "the request ran; its reply was too large to keep")
	case resendUnknown:
		// Forgotten (count, bytes or age bound): a request to one of ours that wants an answer
		// is told, not left to time out.
		if n.replies != nil && wantsAck && env.RType&(envelope.RTypeReply|envelope.RTypeStream) != 0 && n.servesRequest(env) {
			n.replies.metrics.resend(resendResultNotKept)
			n.replyNotKept(l, env, "the request ran; its reply is no longer kept")
			return
		}
		if wantsAck {
			n.sendAck(l, env)
		}
	default:
		// Another sender's id (or a reply to one of our calls): only acknowledged, as before;
		// its replyTo may name whoever sent the original, whose call must not be failed.
		if wantsAck {
			n.sendAck(l, env)
		}
	}
}

// servesRequest reports whether env is a request to one of this node's registrations (not
// a reply to one of our calls).
func (n *Node) servesRequest(env *envelope.Envelope) bool {
	participant, _, _ := envelope.SplitInbox(env.To)
	if participant == "__sys__" || len(participant) >= 7 && participant[:7] == "__rpc__" {
		return false
	}
	return n.lookup(env.To, env.Capabilities) != nil
}

func (n *Node) replyNotKept(l *link, env *envelope.Envelope, reason string) {
	n.refused.inc(RefusedReplyNotKept)
	n.log.Warn("re-sent request ran already and its reply is not kept", "id", env.ID, "from", env.ReplyTo, "sid", env.SID,
		"code", CodeReplyNotKept, "reason", reason)
	n.sendNack(l, env, CodeReplyNotKept, reason)
}

// replay sends kept replies to the re-send req (its replyTo and corrId) over l, through the
// channel req came on while it is open. Without one (it closed, or the re-send came in
// plaintext, which the profile then accepts) they go in plaintext, as handle's replies do after
// a SecureClose: the re-send is signed by the request's signer (resent checks it) and names
// its replyTo under that signature, so the copy goes only to the caller's inbox.
func (n *Node) replay(l *link, req *envelope.Envelope, ch *security.Channel, replies []keptReply) {
	if ch != nil && n.replyChannel(ch) == nil {
		n.log.Debug("re-sending a reply in plaintext: the re-send's channel is closed", "id", req.ID, "cid", ch.CID())
	}
	for _, k := range replies {
		env, err := n.replyEnvelope(l, req, k.id, k.payload, k.meta)
		if err != nil {
			return
		}
		if err := n.sendSecured(n.ctx, l, env, n.replyChannel(ch)); err != nil {
			n.log.Debug("re-sent reply not delivered", "id", req.ID, "to", req.ReplyTo, "err", err)
			return
		}
	}
	n.log.Debug("reply re-sent to a re-sent request", "id", req.ID, "to", req.ReplyTo, "replies", len(replies))
}

// finishReplies keeps the replies of the request env (handler goroutine, after its last
// reply) and answers the re-sends that came while it ran, except those with the original's
// replyTo and corrId, which the original replies reached already.
func (n *Node) finishReplies(env *envelope.Envelope, rec *replyRecorder) {
	e, waiters := n.replies.finish(env.ID, rec)
	for _, w := range waiters {
		if w.env.ReplyTo == e.replyTo && w.env.CorrID == e.corrID {
			continue
		}
		l, err := n.current(n.ctx)
		if err != nil {
			return
		}
		if e.dropped {
			n.replyNotKept(l, w.env, "the request ran; its reply was too large to keep")
			continue
		}
		n.replay(l, w.env, w.ch, e.replies)
	}
}
