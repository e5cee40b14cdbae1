package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/bufpool"
	"github.com/fame-go/fame/internal/corkconn"
	"github.com/fame-go/fame/internal/wsengine"
)

// Limits on per-connection bookkeeping maps (wsengine.MaxFlows). Receivers do not enforce
// seqId order, so forgetting a flow's counter only restarts it at SYN; the bound keeps a
// long-lived agent connection from growing without limit as clients come and go.
const (
	maxFlowsPerConn = wsengine.MaxFlows
	creditWindow    = wsengine.CreditWindow
)

// conn is one attached peer. The reader goroutine (serve) owns recv; stamps is shared by
// every goroutine that sends to this peer and guarded by seqMu, which is also held across the
// enqueue so that queue order equals seqId order.
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

	q         *wsengine.Queue[*conn]
	cork      *corkconn.Conn // the socket under ws, corked by the writer around batches; nil if unknown
	done      chan struct{}
	closeOnce sync.Once
	closeWhy  atomic.Value // string

	seqMu  sync.Mutex
	stamps wsengine.Stamps // seqIds per flow; Own is flowID, the sentinel's own flow (acks, nacks)

	recv wsengine.RecvCredits // receive credits per flow (countCredit); the reader's

	pendMu  sync.Mutex
	pending map[string]packedReq // corrId -> request routed to this peer, awaiting its reply (or its stream's end)

	held        heldLimits    // routes, capabilities and keys this connection holds (limits.go); reader goroutine only
	keysHeld    atomic.Int32  // keys registered for this connection (seclayer)
	lastRefusal atomic.Int64  // unix nanos of the last logged limit refusal (log rate)
	pause       time.Duration // reader goroutine only: back-off after this peer's envelopes were refused (throttle)
	// owedMu guards owed: the connections whose queues this connection's reader owes a flush
	// (flushOwed). Only the reader touches it, except when the library reads the socket on
	// another goroutine (a close handshake), whose hook must not race it.
	owedMu sync.Mutex
	owed   []*conn

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
	end    [8]uint32 // ends of id, traceId, replyTo, to, frame type, corrId, cid, sender sid
	stream bool      // a stream request: tracked until its final item, not its first
	opaque bool      // a stream sealed for a channel: its final item cannot be recognised
	seen   int64     // streams: unix milliseconds of the request or its last item (forgetStaleStreams, awaiting)
}

func packReq(h *envelope.Header) packedReq {
	parts := [8][]byte{h.ID, h.TraceID, h.ReplyTo, h.To, h.FrameType, h.CorrID, h.FrameCID, h.SID}
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
		p.opaque = len(h.EncKID) > 0
		p.seen = time.Now().UnixMilli()
	}
	return p
}

func (p packedReq) unpack() pendingReq {
	var f [8]string
	start := uint32(0)
	for i, e := range p.end {
		f[i] = p.all[start:e]
		start = e
	}
	return pendingReq{id: f[0], traceID: f[1], replyTo: f[2], to: f[3], frameType: f[4], corrID: f[5], cid: f[6]}
}

func newConn(s *Sentinel, ws *websocket.Conn, remote, urlID, origin string) *conn {
	lim := s.limits.o() // the queue bounds in force (a reload changes them for new connections)
	c := &conn{
		identity: identity{urlID: urlID, remote: remote, origin: origin},
		s:        s, owner: s, limits: s.limits, ws: ws,
		q:    wsengine.NewQueue(&queuePool, &s.limits.queued, wsengine.Limits{Count: lim.SendQueue, Bytes: lim.SendQueueBytes, GlobalBytes: s.opts.GlobalQueueBytes}),
		done: make(chan struct{}),
		// stamps, recv and pending make their maps on first use: an idle connection needs
		// little of them, and a map made empty costs as much as a small one.
	}
	c.flowID = envelope.NewID()
	c.stamps.Own = c.flowID
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
// returns wsengine.Accepted, wsengine.RefusedClosed when this connection is gone, or the limit that refused it
// (counted and logged here; the caller nacks the sender OVERLOADED).
func (c *conn) forward(msg []byte, h *envelope.Header, src *conn) string {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	// A refused envelope leaves a gap in seqId; receivers do not enforce the order (above).
	seq, flags := c.stamps.Next(h.FlowID)
	bp := getBuf()
	*bp = envelope.Restamp((*bp)[:0], msg, h, seq, flags)
	var why string
	if src != nil && wsengine.CanDirect(c.cork, len(*bp)) {
		why = c.enqueueForReader(bp, src)
	} else {
		why = c.enqueueLocked(bp, src)
	}
	if why != wsengine.Accepted && why != wsengine.RefusedClosed {
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
	seq, flags := c.stamps.Next([]byte(e.FlowID))
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
	case wsengine.Accepted:
		return true
	case wsengine.RefusedClosed:
	default:
		c.overloaded(why, nil, nil)
	}
	return false
}

// sendCredit refills a flow this peer sends on. CreditUpdates do not advance the counter.
func (c *conn) sendCredit(flowID, traceID string) {
	raw, _ := envelope.EncodeFrame(&envelope.CreditUpdate{FlowID: flowID, Credits: creditWindow})
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
	if why := c.enqueueLocked(bp, nil); why != wsengine.Accepted && why != wsengine.RefusedClosed {
		c.overloaded(why, nil, nil)
	}
	c.seqMu.Unlock()
}

// enqueueLocked never blocks: when the connection's writing is idle the envelope is written
// at once (writeDirect, which does not wait for the peer), else queued. When a bound refuses
// it the caller gets the reason (see wsengine.Queue.Push). Either way b goes back to the pool.
// Call with seqMu held, which keeps the wire order equal to the seqId order.
func (c *conn) enqueueLocked(b *[]byte, src *conn) string {
	if wsengine.CanDirect(c.cork, len(*b)) && c.q.ClaimDirect() && c.writeDirect(b) {
		return wsengine.Accepted
	}
	why := c.q.Push(b, src)
	if why != wsengine.Accepted {
		putBuf(b)
	}
	return why
}

// enqueueForReader queues b, routed by src's reader goroutine (forward from route), for src's
// reader to write itself before its next read (wsengine.Queue.PushDeferred, flushOwed): all
// that one read brought for this connection then goes out in one system call, and no writer
// goroutine is woken while the connection keeps up. Call with seqMu held.
func (c *conn) enqueueForReader(b *[]byte, src *conn) string {
	why, owe := c.q.PushDeferred(b, src)
	if why != wsengine.Accepted {
		putBuf(b)
		return why
	}
	if owe {
		src.owedMu.Lock()
		src.owed = append(src.owed, c)
		src.owedMu.Unlock()
	}
	return wsengine.Accepted
}

// flushOwed writes what this connection's reader queued on other connections (and its own)
// since its last read; the read hook of its socket runs it, and serve once more at the end.
// On the reader goroutine.
func (c *conn) flushOwed() {
	c.owedMu.Lock()
	defer c.owedMu.Unlock()
	for i, d := range c.owed {
		d.q.FlushOwed(d.cork, d.writeCorked)
		c.owed[i] = nil
	}
	c.owed = c.owed[:0]
}

// writeCorked writes a batch into the cork a caller took with TryCork and makes one
// non-blocking write (wsengine.WriteCorked for many messages). The batch stays the caller's
// (release). Partial: the rest is corked for the writer goroutine; an error is left for it too.
func (c *conn) writeCorked(batch []wsengine.Item[*conn]) (wsengine.Outcome, error) {
	for _, it := range batch {
		if err := c.ws.Write(context.Background(), websocket.MessageBinary, *it.B); err != nil {
			return wsengine.Partial, fmt.Errorf("reader flush: %w", err)
		}
		c.tx.Add(1)
		if c.s.opts.ShowEnvelopes {
			c.s.showEnvelope("Sent envelope to "+c.urlID+" 🚀", *it.B)
		}
	}
	return wsengine.Release(c.cork)
}

// writeDirect writes b itself (see internal/wsengine) and gives it back to the pool, or
// reports false when the socket is busy (a control frame being written): b must be queued.
// What the socket could not take at once, and a failure, are left to the writer goroutine:
// it flushes the rest under the slow-consumer deadline, or meets the error and closes the
// connection, on a goroutine that holds no seqMu. Call after ClaimDirect.
func (c *conn) writeDirect(b *[]byte) bool {
	out, err := wsengine.Direct(c.ws, c.cork, *b)
	if out == wsengine.Busy {
		c.q.EndDirect(false)
		return false
	}
	if err == nil {
		c.tx.Add(1)
		if c.s.opts.ShowEnvelopes {
			c.s.showEnvelope("Sent envelope to "+c.urlID+" 🚀", *b)
		}
	}
	putBuf(b)
	c.q.EndDirect(out == wsengine.Partial)
	return true
}

// startWriter starts the writer goroutine; the send queue calls it (through SetWriter) when a
// push ends an empty spell, so a connection has a writer only while it has something to send.
func (c *conn) startWriter() {
	c.s.wg.Add(1)
	go c.writer()
}

// writer is the only goroutine that writes to the socket while it runs (wsengine.Queue.Run): it
// writes what is queued in batches and exits after the queue stayed empty for writerLinger.
func (c *conn) writer() {
	defer c.s.wg.Done()
	c.q.Run(c.done, c.writeBatchOrClose)
}

// writeBatchOrClose writes a batch; when that fails the connection is closed (writeFailed)
// and what is still queued is freed.
func (c *conn) writeBatchOrClose(batch []wsengine.Item[*conn]) bool {
	if c.writeBatch(batch) {
		return true
	}
	c.q.Close()
	return false
}

// maxBatch and maxBatchBytes bound one flush: a peer that cannot take maxBatchBytes within the
// slow-consumer timeout is reading (next to) nothing, and is cut.
const (
	maxBatch      = wsengine.MaxBatch
	maxBatchBytes = wsengine.MaxBatchBytes
)

// writeBatch writes a batch in one system call: the socket is corked while the envelopes are
// written and flushed once at the end. The write deadline covers the whole batch, including
// flushes the cork makes on its own when its buffer fills.
func (c *conn) writeBatch(batch []wsengine.Item[*conn]) bool {
	timeout := c.limits.o().SlowConsumerTimeout
	if c.cork != nil {
		_ = c.cork.SetWriteDeadline(time.Now().Add(timeout))
		c.cork.Cork()
	}
	ok := true
	for _, it := range batch {
		if ok = c.writeOne(it.B, timeout); !ok {
			break
		}
	}
	if c.cork != nil {
		err := c.cork.Uncork(timeout)
		_ = c.cork.SetWriteDeadline(time.Time{})
		if err != nil && ok {
			c.writeFailed(err)
			return false
		}
	}
	return ok
}

func (c *conn) writeOne(b *[]byte, timeout time.Duration) bool {
	var err error
	if c.cork != nil {
		// Corked, the write only fills the batch buffer; the batch's deadline applies to the
		// real write. A per-message timeout context would cost a timer and a
		// context.AfterFunc for every envelope.
		err = c.ws.Write(context.Background(), websocket.MessageBinary, *b)
	} else {
		ctx, cancel := context.WithTimeout(c.s.ctx, timeout)
		err = c.ws.Write(ctx, websocket.MessageBinary, *b)
		cancel()
	}
	if err != nil {
		c.writeFailed(err)
		return false
	}
	c.tx.Add(1)
	if c.s.opts.ShowEnvelopes {
		c.s.showEnvelope("Sent envelope to "+c.urlID+" 🚀", *b)
	}
	return true
}

// writeFailed closes the connection after a failed write. A write that ran into its deadline
// means the peer took nothing for the slow-consumer timeout: that is the one case where the
// destination, not the sender, pays for a full queue.
func (c *conn) writeFailed(err error) {
	if c.closed() {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		t := c.limits.o().SlowConsumerTimeout
		c.limits.refused(limitSlowConsumer, c.urlID, c.remote, "slow consumer cut", "timeout", t, "queued_bytes", c.q.Bytes())
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
		c.q.Close() // what was queued for a closed peer is freed (and uncounted) now
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
// a stream it is in the middle of. It reports whether corrID answered a request routed to this
// peer (the rate limits count everything else as new work).
func (c *conn) answered(corrID []byte, msg []byte) (found bool) {
	if len(corrID) == 0 {
		return false
	}
	c.pendMu.Lock()
	if len(c.pending) > 0 {
		if p, ok := c.pending[string(corrID)]; ok {
			found = true
			// An opaque stream's items are sealed: parsing them cannot find the end.
			if !p.stream || (!p.opaque && streamEnded(msg)) {
				delete(c.pending, string(corrID))
			} else {
				p.seen = time.Now().UnixMilli()
				c.pending[string(corrID)] = p
			}
		}
	}
	c.pendMu.Unlock()
	return found
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

// queuePool holds the rings and writer batches of every connection's send queue.
var queuePool wsengine.Pool[*conn]
