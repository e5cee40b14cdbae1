package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/bufpool"
	"github.com/fame-go/fame/internal/connengine"
	"github.com/fame-go/fame/internal/corkconn"
)

// What conn.forward reports besides a refusal (the refusals are connengine's reasons, which
// are also the limit labels of limits.go: limitQueue and the like are the same strings).
const (
	queueOK     = connengine.OK
	queueClosed = connengine.Closed
)

// conn is one attached peer. Its sending half is a connengine.Engine (bounded queue, direct
// writes from an idle sender, on-demand corked writer, slow-consumer cut). The reader
// goroutine (serve) owns credits; seq is shared by every goroutine that sends to this peer
// and guarded by seqMu, which is also held across Send so that wire order equals seqId order.
type conn struct {
	identity  // urlID, remote, origin; systemID, path, sid once attached (component.go)
	s         *Sentinel
	owner     connOwner // told when the connection closes (the Sentinel)
	limits    *limiter  // counts and logs queue refusals
	ws        *websocket.Conn
	log       *slog.Logger
	logicals  []string
	flowID    string // the sentinel's own flow on this connection
	principal *Principal

	eng       *connengine.Engine
	q         *connengine.Queue // eng's
	done      chan struct{}
	closeOnce sync.Once
	closeWhy  atomic.Value // string

	seqMu sync.Mutex
	seq   connengine.Stamper // flowID (the sentinel's own flow: acks, nacks) and the forwarded ones

	credits connengine.RecvCredits // reader goroutine only (countCredit)

	pendMu  sync.Mutex
	pending map[string]packedReq // corrId -> request routed to this peer, awaiting its reply (or its stream's end)

	held        heldLimits    // routes, capabilities and keys this connection holds (limits.go); reader goroutine only
	keysHeld    atomic.Int32  // keys registered for this connection (seclayer)
	lastRefusal atomic.Int64  // unix nanos of the last logged limit refusal (log rate)
	pause       time.Duration // reader goroutine only: back-off after this peer's envelopes were refused (throttle)

	lastRx     atomic.Int64 // unix nanos of the last message read (idle sweeper)
	pingOn     atomic.Bool  // probed by the ping sweeper (serves an address)
	pingOut    atomic.Bool  // a probe is waiting for its pong
	attachedAt time.Time
	rx, tx     atomic.Uint64
}

// pendingReq is a request forwarded to this peer; if the peer goes away before replying, the
// caller gets a ROUTE_CONNECTOR_CLOSED nack instead of waiting for its timeout.
type pendingReq struct {
	id, traceID, replyTo, to, frameType, corrID, cid string
}

// packedReq is how a pendingReq is kept while it waits: its fields share one string, so that
// remembering a request costs one allocation instead of seven.
type packedReq struct {
	all    string
	end    [7]uint32
	stream bool  // a stream request: tracked until its final item, not its first
	seen   int64 // streams: unix seconds of the request or its last item (forgetStaleStreams)
}

func packReq(h *envelope.Header) packedReq {
	parts := [7][]byte{h.ID, h.TraceID, h.ReplyTo, h.To, h.FrameType, h.CorrID, h.FrameCID}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	var p packedReq
	for i, part := range parts {
		b = append(b, part...)
		p.end[i] = uint32(len(b))
	}
	p.all = string(b)
	p.stream = h.RType.Has(envelope.RTypeStream)
	if p.stream {
		p.seen = time.Now().Unix()
	}
	return p
}

func (p packedReq) unpack() pendingReq {
	var f [7]string
	start := uint32(0)
	for i, e := range p.end {
		f[i] = p.all[start:e]
		start = e
	}
	return pendingReq{id: f[0], traceID: f[1], replyTo: f[2], to: f[3], frameType: f[4], corrID: f[5], cid: f[6]}
}

// newConn wraps an accepted socket; cork is the socket under ws (nil if unknown: no direct
// writes, no batching).
func newConn(s *Sentinel, ws *websocket.Conn, cork *corkconn.Conn, remote, urlID, origin string) *conn {
	lim := s.limits.o() // the bounds in force (a reload changes them for new connections)
	c := &conn{
		identity: identity{urlID: urlID, remote: remote, origin: origin},
		s:        s, owner: s, limits: s.limits, ws: ws,
		flowID: envelope.NewID(),
		done:   make(chan struct{}),
		// The stamper's and the credits' maps and pending are made on first use: an idle
		// connection needs little of them, and a map made empty costs as much as a small one.
	}
	c.seq = connengine.NewStamper(c.flowID, 0)
	c.eng = connengine.New(connengine.Config{
		WS: ws, Cork: cork,
		Limits: connengine.Limits{Count: lim.SendQueue, Bytes: lim.SendQueueBytes, GlobalBytes: s.opts.GlobalQueueBytes},
		Global: &s.limits.queued, SlowConsumer: lim.SlowConsumerTimeout,
		DirectGap: connengine.DefaultDirectGap,
		Go: func(f func()) {
			s.wg.Add(1)
			go func() { defer s.wg.Done(); f() }()
		},
		Done:        c.done,
		WriteFailed: c.writeFailed,
		Sent:        c.sent,
	})
	c.q = c.eng.Queue()
	c.log = slog.New(&connLog{h: s.log.Handler(), c: c})
	return c
}

// connLog is a connection's log handler: it adds peer, remote and (once attached) system_id
// to each record as it is logged, where Logger.With would format and keep them for every
// connection up front, a few hundred bytes per idle connection that may never log.
type connLog struct {
	h slog.Handler
	c *conn
}

func (l *connLog) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l *connLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(slog.String("peer", l.c.urlID), slog.String("remote", l.c.remote))
	if id := l.c.systemID; id != "" {
		out.AddAttrs(slog.String("system_id", id))
	}
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	return l.h.Handle(ctx, out)
}

func (l *connLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &connLog{h: l.h.WithAttrs(as), c: l.c}
}

func (l *connLog) WithGroup(name string) slog.Handler {
	return &connLog{h: l.h.WithGroup(name), c: l.c}
}

// forward re-stamps an envelope received from src for this connection and queues it. It
// returns queueOK, queueClosed when this connection is gone, or the limit that refused it
// (counted and logged here; the caller nacks the sender OVERLOADED).
func (c *conn) forward(msg []byte, h *envelope.Header, src *conn) string {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	// A refused envelope leaves a gap in seqId; receivers do not enforce the order (above).
	seq, flags := c.seq.Next(h.FlowID)
	bp := getBuf()
	*bp = envelope.Restamp((*bp)[:0], msg, h, seq, flags)
	why := c.enqueueLocked(bp, src)
	if why != connengine.OK && why != connengine.Closed {
		c.overloaded(why, src, h)
	}
	return why
}

// sendOwn sends an envelope the sentinel originates on this connection's sentinel flow.
// flagsOverride, when non-zero, replaces the computed flags (nacks are sent with RESET).
func (c *conn) sendOwn(e *envelope.Envelope, flagsOverride envelope.FlowFlags) bool {
	if e.FlowID == "" {
		e.FlowID = c.flowID
	}
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	seq, flags := c.seq.Next([]byte(e.FlowID))
	if flagsOverride != 0 {
		flags = flagsOverride
	}
	e.SeqID, e.FlowFlags = seq, flags
	bp := getBuf()
	b, err := e.AppendMarshal((*bp)[:0])
	if err != nil {
		putBuf(bp)
		c.log.Error("encode own envelope", "frame", e.FrameType(), "err", err)
		return false
	}
	*bp = b
	switch why := c.enqueueLocked(bp, nil); why {
	case connengine.OK:
		return true
	case connengine.Closed:
	default:
		c.overloaded(why, nil, nil)
	}
	return false
}

// sendCredit refills a flow this peer sends on. CreditUpdates do not advance the counter.
func (c *conn) sendCredit(flowID, traceID string) {
	raw, _ := envelope.EncodeFrame(&envelope.CreditUpdate{FlowID: flowID, Credits: connengine.CreditWindow})
	e := &envelope.Envelope{Version: envelope.Version, ID: envelope.NewID(), TraceID: traceID,
		FlowID: flowID, SeqID: 0, FlowFlags: envelope.FlowAck, Frame: raw, TS: envelope.Now()}
	bp := getBuf()
	b, err := e.AppendMarshal((*bp)[:0])
	if err != nil {
		putBuf(bp)
		return
	}
	*bp = b
	c.seqMu.Lock()
	if why := c.enqueueLocked(bp, nil); why != connengine.OK && why != connengine.Closed {
		c.overloaded(why, nil, nil)
	}
	c.seqMu.Unlock()
}

// enqueueLocked hands b to the engine, which writes it at once when the connection is idle
// (never waiting for the peer) or queues it; when a bound refuses it the caller gets the
// reason (see connengine.Queue.Push) and b is back in the pool. Call with seqMu held.
func (c *conn) enqueueLocked(b *[]byte, src *conn) string {
	var from any
	if src != nil {
		from = src // a nil *conn in an interface would count as a sender
	}
	return c.eng.Send(b, from)
}

// sent counts an envelope handed to the socket (the engine calls it from the writing goroutine).
func (c *conn) sent(b []byte) {
	c.tx.Add(1)
	if c.s.opts.ShowEnvelopes {
		c.s.showEnvelope("Sent envelope to "+c.urlID+" 🚀", b)
	}
}

// writeFailed closes the connection after a failed write. A write that ran into its deadline
// means the peer took nothing for the slow-consumer timeout: that is the one case where the
// destination, not the sender, pays for a full queue.
func (c *conn) writeFailed(err error) {
	if c.closed() {
		return
	}
	if connengine.IsSlowConsumer(err) {
		t := c.eng.SlowConsumer()
		c.limits.refused(limitSlowConsumer, c.urlID, c.remote, "slow consumer cut", "timeout", t, "queued_bytes", c.q.QueuedBytes())
		c.close(websocket.StatusPolicyViolation, "slow consumer: nothing read for "+t.String())
		return
	}
	c.close(websocket.StatusGoingAway, "write failed: "+err.Error())
}

// startPinger enrols the peer in liveness probing once it serves an address: a hung replica
// must leave its pools within seconds, while a plain client costs nothing and is caught by the
// idle sweeper instead (it heartbeats every 15 s).
func (c *conn) startPinger() {
	if c.s.opts.PingInterval <= 0 || c.pingOn.Swap(true) || c.closed() {
		return
	}
	c.s.pings.add(c)
}

// pingSweeper is the one goroutine that probes every serving peer each PingInterval, where
// a goroutine and a ticker per peer would cost an idle replica kilobytes. A probe waits for
// its pong on a goroutine of its own, which exists only while the probe is out.
type pingSweeper struct {
	mu    sync.Mutex // guards conns; the sweeper starts with the first peer that serves
	conns map[*conn]struct{}
}

func (p *pingSweeper) add(c *conn) {
	p.mu.Lock()
	if p.conns == nil {
		p.conns = map[*conn]struct{}{}
		c.s.wg.Add(1)
		go p.run(c.s)
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	if c.closed() { // close may have missed it
		p.remove(c)
	}
}

func (p *pingSweeper) remove(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *pingSweeper) run(s *Sentinel) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	var due []*conn
	for {
		select {
		case <-s.drainCh:
			return
		case <-t.C:
		}
		p.mu.Lock()
		for c := range p.conns {
			due = append(due, c)
		}
		p.mu.Unlock()
		for i, c := range due {
			due[i] = nil
			// A probe still out (its pong not yet due) is not doubled.
			if !c.closed() && c.pingOut.CompareAndSwap(false, true) {
				s.wg.Add(1)
				go c.ping()
			}
		}
		due = due[:0]
	}
}

// ping detects a peer that stopped reading: both the TS ws library and coder/websocket answer
// pings from their read loops, so a missed pong means the peer is hung or gone.
func (c *conn) ping() {
	defer c.s.wg.Done()
	defer c.pingOut.Store(false)
	iv := c.s.opts.PingInterval
	ctx, cancel := context.WithTimeout(c.s.ctx, 2*iv)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil && !c.closed() {
		c.close(websocket.StatusGoingAway, "liveness: no pong within "+(2*iv).String())
	}
}

// close tears the connection down once: it leaves every route at once (so nothing more is
// routed to it), then closes the socket. Safe to call from any goroutine.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeWhy.Store(reason)
		close(c.done)
		if c.pingOn.Load() {
			c.s.pings.remove(c)
		}
		c.eng.Close() // what was queued for a closed peer is freed (and uncounted) now
		c.owner.connClosed(c, reason)
		if len(reason) > 120 {
			reason = reason[:120]
		}
		// Close waits for the peer's close frame; do not hold up the caller for that.
		c.s.wg.Add(1)
		go func() {
			defer c.s.wg.Done()
			_ = c.ws.Close(code, reason)
		}()
	})
}

func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// trackPending remembers a request about to be routed to this peer, so that its death nacks
// it. It returns false, tracking nothing, when the peer already has MaxPending requests open:
// the caller nacks the request instead of forwarding it untracked.
func (c *conn) trackPending(h *envelope.Header) bool {
	if len(h.CorrID) == 0 || len(h.ReplyTo) == 0 || !(h.RType.Has(envelope.RTypeReply) || h.RType.Has(envelope.RTypeStream)) {
		return true
	}
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if _, again := c.pending[string(h.CorrID)]; !again && len(c.pending) >= c.limits.o().MaxPending {
		return false
	}
	p := packReq(h)
	if c.pending == nil {
		c.pending = map[string]packedReq{}
	}
	c.pending[p.all[p.end[4]:p.end[5]]] = p
	return true
}

// untrack forgets a request that was tracked but could not be forwarded.
func (c *conn) untrack(h *envelope.Header) {
	c.pendMu.Lock()
	delete(c.pending, string(h.CorrID))
	c.pendMu.Unlock()
}

// answered forgets a pending request once this peer sent its reply, or for a stream its final
// item (a JSON-RPC response with a null result or an error): the peer's death must still nack
// a stream it is in the middle of.
func (c *conn) answered(corrID []byte, msg []byte) {
	if len(corrID) == 0 {
		return
	}
	c.pendMu.Lock()
	if len(c.pending) > 0 {
		if p, ok := c.pending[string(corrID)]; ok {
			if !p.stream || streamEnded(msg) {
				delete(c.pending, string(corrID))
			} else {
				p.seen = time.Now().Unix()
				c.pending[string(corrID)] = p
			}
		}
	}
	c.pendMu.Unlock()
}

func (c *conn) takePending() []pendingReq {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	out := make([]pendingReq, 0, len(c.pending))
	for _, p := range c.pending {
		out = append(out, p.unpack())
	}
	clear(c.pending)
	return out
}

var errAttach = errors.New("attach refused")

func attachErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errAttach}, args...)...)
}

// Outbound buffers come from the module's one buffer pool (internal/bufpool): the writer
// returns each one after the socket write, so the forward path does not allocate a fresh
// copy of every envelope.
func getBuf() *[]byte { return bufpool.Get() }

func putBuf(b *[]byte) { bufpool.Put(b) }
