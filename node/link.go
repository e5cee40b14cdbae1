package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/corkconn"
	"github.com/fame-go/fame/internal/wsengine"
)

// Credit constants of the reference connector: a window of 32 per flow, refilled once the
// receiver has consumed 24 (its counter at the 0.25 low watermark).
const (
	creditWindow    = wsengine.CreditWindow
	creditThreshold = wsengine.CreditThreshold
	creditFlows     = 4096 // received flows tracked per link (LRU; idle flows fall out)
)

// link is one attached WebSocket connection to the sentinel, from the attach handshake to
// the socket's close. ("Session" in FAME means a client's sid; a link is a socket lifetime.)
//
// A link knows nothing of the Node: everything it needs is handed to it at construction in
// linkDeps (config values, the hooks, the signer for what it originates, where inbound
// envelopes go and whom to tell when it fails). It owns its goroutines (reader, writer,
// heartbeat, and the owner's per-link loops), all ended by ctx and waited for by wg.
//
// What the Node talks to is small on purpose, so that a shared engine can replace the
// per-link one: send (queue, blocking up to ctx), post (queue from the reader, never
// blocking), flush, done/cause (its end), shutdown. Data is written by whoever holds wmu: the
// writer goroutine for a batch, or a sender that found the writer idle (send, post: a direct
// write, internal/wsengine); the holder alone stamps seqId/flowFlags.
type link struct {
	deps   linkDeps
	conn   *websocket.Conn
	cork   *corkconn.Conn // the socket under conn, corked around batches; nil if unknown
	ctx    context.Context
	cancel context.CancelCauseFunc
	sendq  chan outItem
	wg     sync.WaitGroup
	lost   sync.Once // deps.lost is called at most once

	// queued counts items handed to sendq (or waiting for room in it) that the writer has not
	// yet handled: a direct write is allowed only at zero, so it never overtakes them.
	queued atomic.Int64
	// flushReq asks the writer goroutine to finish what a direct write left in the cork.
	flushReq chan struct{}

	// wmu guards the following fields: the writing state, used by the writer goroutine for a
	// batch and by a sender writing directly.
	wmu        sync.Mutex
	w          *writer
	gate       *senderCredits
	lastDirect int64 // wsengine.Now() of the last direct write (wsengine.Burst)

	flowID  string // this node's own flow on this link (control traffic)
	traceID string // trace id of this link's control traffic (binds, heartbeats)

	// The attachment, from NodeAttachAck; set by the owner before start, read-only after.
	assignedPath string
	parentPath   string // the sentinel's physical path (NodeAttachAck.targetPhysicalPath)
	parentSID    string // the sid on the NodeAttachAck envelope (the sentinel's)
	ackMeta      []byte // the NodeAttachAck envelope's meta (the sentinel's tracing offer)
	sid          string // this node's sid (digest of assignedPath)
	sysInbox     string
	rpcInbox     string
	epoch        atomic.Pointer[string]
	lastAck      atomic.Int64 // unix nanos of the last NodeHeartbeatAck (or attach)

	credits       *lru.Cache[string, int] // reader-owned counters per received flowId
	grants        *creditGrants           // CreditUpdates received, for the writer
	pendingCredit []*envelope.Envelope    // credits earned during attach, sent by start

	// Owner state that lives and dies with the link (the Node's inbound security).
	waits keyWaits // envelopes waiting for an unknown signing key
	aft   bool     // pool replica whose sentinel enabled AFT stickiness
	// certGen is the certificate generation the sentinel holds for this link's keys
	// (sent in NodeAttach or the last KeyAnnounce), certNotAfter (unix nanos, 0 = none) when
	// that certificate expires: past it the sentinel refuses everything the link signs.
	certGen      atomic.Uint64
	certNotAfter atomic.Int64
}

// linkDeps is what a link needs from its owner, fixed at construction.
type linkDeps struct {
	log *slog.Logger
	// show prints an envelope for humans (FAME_SHOW_ENVELOPES); nil when off.
	show func(label string, raw []byte)

	heartbeat   time.Duration // NodeHeartbeat interval; two without an ack fail the link
	sendQueue   int           // send queue length
	flowControl bool          // credit flow control (fame-protocol §5.5) on both sides

	// inboundHooks run on every decoded envelope before anything else; an error drops it.
	inboundHooks []EnvelopeHook
	// seal prepares an envelope the link itself originates after the attach (heartbeats):
	// the outbound hooks and the signature of the security profile.
	seal func(*envelope.Envelope) error
	// deliver handles one inbound envelope (all but CreditUpdates, which the link applies
	// itself) on the reader goroutine. It must not block: it may post, never send.
	deliver func(l *link, env *envelope.Envelope)
	// lost is told once, from the goroutine that noticed, that the link failed (socket
	// error, missed heartbeat acks, ...). Not called for shutdown, which the owner asked for.
	lost func(l *link, cause error)
	// loops are the owner's per-link goroutines, started by start and ended with the link.
	loops []func(l *link)
	// busy is the owner's work in progress (Node.busy): above one, envelopes go to the
	// writer, which batches them, instead of being written on the sender's goroutine. nil:
	// no such gate.
	busy *atomic.Int64
}

// outItem is one envelope queued for the writer. Raw items (CreditUpdates) keep the
// seqId/flowFlags they were built with and do not advance the flow's counter.
type outItem struct {
	env *envelope.Envelope
	raw bool
	// done, on an item without env, is a flush marker: the writer closes it when it gets
	// there, so everything queued before it has been written (or held for credit).
	done chan struct{}
}

// newLink wraps an open socket (cork is the raw connection under it, nil if unknown). The
// link is not running until start; attach may be run first on the caller's goroutine.
func newLink(conn *websocket.Conn, cork *corkconn.Conn, deps linkDeps) *link {
	l := &link{deps: deps, conn: conn, cork: cork, flowID: envelope.NewID(), traceID: envelope.NewID(),
		flushReq: make(chan struct{}, 1)}
	l.w = &writer{l: l, seq: map[string]int64{l.flowID: 0}, buf: make([]byte, 0, 4096)} // NodeAttach used seqId 0
	l.gate = newSenderCredits()
	l.gate.credits[l.flowID] = creditWindow - 1 // NodeAttach spent one
	l.credits, _ = lru.New[string, int](creditFlows)
	l.grants = newCreditGrants()
	l.waits.kids = map[string]*keyWait{}
	return l
}

// attach sends hello (a NodeAttach with this link's flow stamped, see Node.hello) as the
// first message and reads until the NodeAttachAck, whose envelope sid becomes parentSID.
func (l *link) attach(ctx context.Context, hello *envelope.Envelope) (*envelope.NodeAttachAck, error) {
	b, err := hello.Marshal()
	if err != nil {
		return nil, err
	}
	l.showEnv("Sent envelope 🚀", b)
	if err := l.conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		return nil, attachFailure(err, "writing NodeAttach")
	}
	for {
		_, msg, err := l.conn.Read(ctx)
		if err != nil {
			return nil, attachFailure(err, "connector closed while waiting for NodeAttachAck")
		}
		l.showEnv("Received envelope 📨", msg)
		in, err := envelope.Decode(msg)
		if err != nil {
			l.deps.log.Warn("dropping undecodable envelope during attach", "err", err)
			continue
		}
		l.countCredit(in)
		if in.FrameType() != envelope.TypeNodeAttachAck {
			continue
		}
		f, err := in.DecodeFrame()
		if err != nil {
			return nil, &AttachError{CloseCode: -1, Reason: "bad NodeAttachAck: " + err.Error()}
		}
		ack := f.(*envelope.NodeAttachAck)
		l.parentSID, l.ackMeta = in.SID, in.Meta
		if !ack.OK {
			reason := ack.Reason
			if reason == "" {
				reason = ack.Code
			}
			return nil, &AttachError{CloseCode: -1, Reason: reason, Refused: true}
		}
		if ack.AssignedPath == "" {
			ack.AssignedPath = ack.AssignedPathSnake
		}
		if ack.RoutingEpoch == "" {
			ack.RoutingEpoch = ack.RoutingEpochSnake
		}
		if ack.AssignedPath == "" {
			return nil, &AttachError{CloseCode: -1, Reason: "NodeAttachAck without assignedPath"}
		}
		return ack, nil
	}
}

func attachFailure(err error, what string) error {
	ae := &AttachError{CloseCode: websocket.CloseStatus(err), Reason: what}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		ae.CloseReason = ce.Reason
	}
	if ae.CloseCode < 0 {
		ae.Reason = what + ": " + err.Error()
	}
	return ae
}

// showEnv prints raw when the owner asked for envelopes to be shown.
func (l *link) showEnv(label string, raw []byte) {
	if l.deps.show != nil {
		l.deps.show(label, raw)
	}
}

// start launches the link's goroutines. Their context is not derived from the owner's: a
// cancelled read makes the WebSocket library drop the socket without a close frame, and
// shutdown must say goodbye with 1000 first.
func (l *link) start() {
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.sendq = make(chan outItem, l.deps.sendQueue)
	for _, cu := range l.pendingCredit {
		l.queued.Add(1)
		l.sendq <- outItem{env: cu, raw: true}
	}
	l.pendingCredit = nil
	l.wg.Add(3 + len(l.deps.loops))
	go l.readLoop()
	go l.writeLoop()
	go l.heartbeatLoop()
	for _, loop := range l.deps.loops {
		go func() {
			defer l.wg.Done()
			loop(l)
		}()
	}
}

// done is closed when the link has ended (failed or shut down); cause then says why.
func (l *link) done() <-chan struct{} { return l.ctx.Done() }

// alive reports whether the link is running (started and not ended).
func (l *link) alive() bool { return l.ctx != nil && l.ctx.Err() == nil }

// cause is why the link ended (nil while it runs).
func (l *link) cause() error { return context.Cause(l.ctx) }

// fail ends the link (first cause wins) and tells the owner once.
func (l *link) fail(cause error) {
	l.cancel(cause)
	l.conn.CloseNow()
	if l.deps.lost != nil {
		l.lost.Do(func() { l.deps.lost(l, l.cause()) })
	}
}

// shutdown closes the socket in order (1000) and waits for the goroutines.
func (l *link) shutdown() {
	l.lost.Do(func() {}) // the owner asked: nothing to report
	if l.ctx.Err() == nil {
		_ = l.conn.Close(websocket.StatusNormalClosure, "normal closure")
	}
	l.cancel(ErrClosed)
	l.conn.CloseNow()
	l.wg.Wait()
}

// send hands an envelope (prepared by the owner: flow, hooks, signature) to the writer,
// waiting for room up to ctx or the link's end (errLinkLost).
// When the writer is idle the envelope is written at once instead (direct).
func (l *link) send(ctx context.Context, env *envelope.Envelope) error {
	if sent, err := l.direct(env); sent {
		return err
	}
	return l.enqueue(ctx, outItem{env: env})
}

// post queues an envelope from the reader goroutine, which must never block: false when the
// queue is full and the envelope was dropped (the peer re-sends or times out). When the
// writer is idle the envelope is written at once instead (direct), which never blocks either.
func (l *link) post(env *envelope.Envelope) bool {
	if sent, err := l.direct(env); sent {
		return err == nil
	}
	l.queued.Add(1)
	select {
	case l.sendq <- outItem{env: env}:
		return true
	default:
		l.queued.Add(-1)
		return false
	}
}

// direct writes env on the caller's goroutine when the link's writing is idle and its owner
// has at most one call or request in progress (deps.busy; more go to the writer, which
// batches them): nothing
// queued, the writer goroutine not in a batch (wmu free), nothing left in the cork. It never
// waits: wmu is only tried, and the write is wsengine.Direct. sent false means the caller
// must queue env; true means env was written, or held for credits (the writer sends it when
// they come), or dropped as unencodable (as the writer would), or the link failed (err).
func (l *link) direct(env *envelope.Envelope) (sent bool, err error) {
	if l.cork == nil || l.queued.Load() != 0 || (l.deps.busy != nil && l.deps.busy.Load() > 1) || !l.wmu.TryLock() {
		return false, nil
	}
	sent, err = l.directLocked(env)
	l.wmu.Unlock()
	if err != nil {
		// Outside wmu: the owner's lost hook must be free to do anything.
		l.fail(fmt.Errorf("node: write: %w", err))
		err = errLinkLost
	}
	return sent, err
}

func (l *link) directLocked(env *envelope.Envelope) (bool, error) {
	now := wsengine.Now()
	if l.queued.Load() != 0 || l.ctx == nil || l.ctx.Err() != nil || !wsengine.CanDirect(l.cork, 0) ||

		(l.deps.flowControl && l.gate.full()) || wsengine.Burst(now, l.lastDirect) {
		return false, nil // a burst (wsengine.BurstGap) goes to the writer, to be sent in one write
	}
	// Corked first: stamping commits env to being written, so the socket must be ours
	// (no control frame being written, no rest of an earlier direct write) before that.
	if !l.cork.TryCork() {
		return false, nil
	}
	l.lastDirect = now
	it := outItem{env: env}
	var out wsengine.Outcome
	var err error
	msg, ok := []byte(nil), false
	if !l.deps.flowControl || l.gate.admit(it) { // else held: a grant releases it through the writer
		msg, ok = l.w.encode(it)
	}
	if ok {
		out, err = wsengine.WriteCorked(l.conn, l.cork, msg)
	} else {
		out, err = wsengine.Release(l.cork)
	}
	if out == wsengine.Partial && err == nil {
		select {
		case l.flushReq <- struct{}{}:
		default:
		}
	}
	return true, err
}

// flush waits until the writer has reached everything queued so far, or ctx ends.
func (l *link) flush(ctx context.Context) {
	done := make(chan struct{})
	if l.enqueue(ctx, outItem{done: done}) != nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-l.ctx.Done():
	}
}

// enqueue hands an item to the writer without blocking past ctx or the link's end.
func (l *link) enqueue(ctx context.Context, it outItem) error {
	l.queued.Add(1)
	select {
	case l.sendq <- it:
		return nil
	case <-l.ctx.Done():
		l.queued.Add(-1)
		return errLinkLost
	case <-ctx.Done():
		l.queued.Add(-1)
		return ctx.Err()
	}
}

// errLinkLost: the link ended while an envelope waited to be queued; callers that can wait
// for the next link retry.
var errLinkLost = errors.New("node: connection lost")

func (l *link) writeLoop() {
	defer l.wg.Done()
	flow := l.deps.flowControl
	// full is the gate's state as of the writer's last turn: taking wmu between turns only
	// to look would make direct senders find the writer busy. A direct sender does not
	// fill the gate (it queues when the gate is full), so the writer's own turns keep this
	// up to date.
	full := false
	for {
		sendq := l.sendq
		if full {
			sendq = nil // stop taking more until grants drain the held envelopes
		}
		var ok bool
		select {
		case <-l.ctx.Done():
			return
		case <-l.grants.wake:
			l.wmu.Lock()
			ok = l.w.flush(l.gate.grant(l.grants.take()))
			full = flow && l.gate.full()
			l.wmu.Unlock()
		case <-l.flushReq: // a direct write's rest
			l.wmu.Lock()
			ok = l.w.uncork(true)
			l.wmu.Unlock()
		case it := <-sendq:
			l.wmu.Lock()
			ok = l.w.batch(l.gate, flow, it)
			full = flow && l.gate.full()
			l.wmu.Unlock()
		}
		if !ok {
			return
		}
	}
}

// flush writes envelopes released by credit grants as one corked batch. False ends the writer.
func (w *writer) flush(items []outItem) bool {
	if len(items) == 0 {
		return true
	}
	l := w.l
	if l.cork != nil {
		l.cork.Cork()
	}
	ok := true
	for _, it := range items {
		if ok = w.write(it); !ok {
			break
		}
	}
	return w.uncork(ok)
}

// uncork sends what a batch left in the corked socket.
func (w *writer) uncork(ok bool) bool {
	if l := w.l; l.cork != nil {
		if err := l.cork.Uncork(0); err != nil && ok {
			l.fail(fmt.Errorf("node: write: %w", err))
			return false
		}
	}
	return ok
}

// maxBatch bounds how many queued envelopes one flush carries.
const maxBatch = wsengine.MaxBatch

// batch writes it and whatever else is already queued (up to maxBatch) with the socket
// corked, so the kernel sees one write(2) for the lot. False ends the writer. Call with wmu
// held.
func (w *writer) batch(gate *senderCredits, flow bool, it outItem) bool {
	l := w.l
	if l.cork != nil {
		l.cork.Cork()
	}
	ok := true
	for n := 0; ; n++ {
		if it.done != nil {
			close(it.done)
		} else if !flow || gate.admit(it) {
			ok = w.write(it)
		}
		l.queued.Add(-1)
		if !ok {
			break
		}
		if n+1 >= maxBatch || (flow && gate.full()) {
			break
		}
		select {
		case it = <-l.sendq:
			continue
		default:
		}
		break
	}
	return w.uncork(ok)
}

// writer stamps and writes envelopes; whoever holds the link's wmu uses it.
type writer struct {
	l   *link
	seq map[string]int64
	buf []byte
}

// write stamps seqId/flowFlags (raw items keep theirs) and writes; false ends the writer.
func (w *writer) write(it outItem) bool {
	l := w.l
	msg, ok := w.encode(it)
	if !ok {
		return true
	}
	// No cancellable context: the library would arm and disarm a context.AfterFunc for every
	// message. A stuck write still ends, because every path that cancels l.ctx (fail,
	// shutdown) also closes the socket.
	if err := l.conn.Write(context.Background(), websocket.MessageBinary, msg); err != nil {
		l.fail(fmt.Errorf("node: write: %w", err))
		return false
	}
	return true
}

// encode stamps seqId/flowFlags (raw items keep theirs) and encodes it into w.buf; false
// means it was dropped (logged) as unencodable or oversize.
func (w *writer) encode(it outItem) ([]byte, bool) {
	l, e := w.l, it.env
	if !it.raw {
		last, seen := w.seq[e.FlowID]
		if !seen {
			e.SeqID, e.FlowFlags = 0, envelope.FlowSyn
			w.seq[e.FlowID] = 0
		} else {
			e.SeqID, e.FlowFlags = last+1, 0
			w.seq[e.FlowID] = last + 1
		}
	}
	var err error
	w.buf, err = e.AppendMarshal(w.buf[:0])
	if err != nil {
		l.deps.log.Error("dropping unencodable envelope", "id", e.ID, "err", err)
		return nil, false
	}
	if len(w.buf) > envelope.MaxMessageSize {
		l.deps.log.Error("dropping oversize envelope", "id", e.ID, "bytes", len(w.buf))
		return nil, false
	}
	l.showEnv("Sent envelope 🚀", w.buf)
	return w.buf, true
}

func (l *link) readLoop() {
	defer l.wg.Done()
	for {
		_, msg, err := l.conn.Read(context.Background()) // see writer.write: fail and shutdown close the socket
		if err != nil {
			l.fail(fmt.Errorf("node: read: %w", err))
			return
		}
		l.receive(msg)
	}
}

// receive handles one inbound message (reader goroutine): decode, inbound hooks, credit
// accounting both ways, then the owner's deliver for everything but CreditUpdates.
func (l *link) receive(msg []byte) {
	l.showEnv("Received envelope 📨", msg)
	env, err := envelope.Decode(msg)
	if err != nil {
		l.deps.log.Warn("dropping undecodable envelope", "err", err)
		return
	}
	if err := runHooks(l.deps.inboundHooks, env); err != nil {
		l.deps.log.Debug("inbound hook dropped envelope", "id", env.ID, "err", err)
		return
	}
	// One FrameType (it allocates) for both credit checks.
	if env.FrameType() == envelope.TypeCreditUpdate {
		// Hop-local and exempt from signatures: the link's own business.
		if f, err := env.DecodeFrame(); err == nil {
			cu := f.(*envelope.CreditUpdate)
			l.grants.add(cu.FlowID, cu.Credits)
		}
		return
	}
	l.credit(env)
	l.deps.deliver(l, env)
}

// countCredit is the receiver side of credit flow control: after creditThreshold envelopes
// of one flow it grants the sender a fresh window. Runs on the reader goroutine only (and on
// the dialing goroutine before the reader exists).
func (l *link) countCredit(env *envelope.Envelope) {
	if !l.deps.flowControl || env.FlowID == "" || env.FrameType() == envelope.TypeCreditUpdate {
		return
	}
	l.credit(env)
}

// credit is countCredit for an envelope known not to be a CreditUpdate.
func (l *link) credit(env *envelope.Envelope) {
	if !l.deps.flowControl || env.FlowID == "" {
		return
	}
	c, _ := l.credits.Get(env.FlowID)
	c++
	if c < creditThreshold {
		l.credits.Add(env.FlowID, c)
		return
	}
	l.credits.Add(env.FlowID, 0)
	cu, err := envelope.New(&envelope.CreditUpdate{FlowID: env.FlowID, Credits: creditWindow})
	if err != nil {
		return
	}
	cu.TraceID, cu.FlowID, cu.SeqID, cu.FlowFlags = env.TraceID, env.FlowID, 0, envelope.FlowAck
	if l.sendq == nil {
		l.pendingCredit = append(l.pendingCredit, cu)
		return
	}
	// Never block the reader: the queue is long, and a full queue means the socket is stuck.
	l.queued.Add(1)
	select {
	case l.sendq <- outItem{env: cu, raw: true}:
	default:
		l.queued.Add(-1)
		l.deps.log.Warn("send queue full, CreditUpdate dropped", "flow", env.FlowID)
	}
}

// heartbeatAcked records a NodeHeartbeatAck the owner accepted as the sentinel's.
func (l *link) heartbeatAcked() { l.lastAck.Store(time.Now().UnixNano()) }

func (l *link) heartbeatLoop() {
	defer l.wg.Done()
	iv := l.deps.heartbeat
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, l.lastAck.Load())) > 2*iv {
			l.deps.log.Warn("missed heartbeat acknowledgement, reconnecting")
			l.fail(errors.New("node: missed heartbeat acknowledgement"))
			return
		}
		env, err := envelope.New(&envelope.NodeHeartbeat{})
		if err != nil {
			continue
		}
		env.SID, env.TraceID, env.CorrID, env.FlowID = l.sid, l.traceID, envelope.NewID(), l.flowID
		err = l.deps.seal(env)
		if err == nil {
			err = l.send(l.ctx, env)
		}
		if err != nil && l.ctx.Err() == nil {
			l.deps.log.Warn("heartbeat not sent", "err", err)
		}
	}
}
