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

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/bufpool"
	"github.com/fame-go/fame/internal/corkconn"
	"github.com/fame-go/fame/internal/wsengine"
)

// Credit constants of the reference connector: a window of 32 per flow, refilled once the
// receiver has consumed 24 (its counter at the 0.25 low watermark).
const (
	creditWindow    = wsengine.CreditWindow
	creditThreshold = wsengine.CreditThreshold
)

// linkQueueBytes bounds what one link holds to write, in its send queue and (as many again)
// held by its credit gate: past it senders wait for room (send) or are refused (post).
const linkQueueBytes = 64 << 20

// link is one attached WebSocket connection to the sentinel, from the attach handshake to
// the socket's close. ("Session" in FAME means a client's sid; a link is a socket lifetime.)
//
// A link knows nothing of the Node: everything it needs is handed to it at construction in
// linkDeps (config values, the hooks, the signer for what it originates, where inbound
// envelopes go and whom to tell when it fails). It owns its goroutines (the reader, the
// owner's per-link loops, a writer while there is something to write and a heartbeat while
// one is being sent), all ended by ctx and waited for by wg.
//
// Its writing is the connection engine the sentinel uses too (internal/wsengine): a send
// queue bounded in envelopes and bytes whose writer goroutine exists only while the link is
// busy, a direct write by the sender when that writer is idle, per-flow stamping and the
// credit gate. What the Node talks to is small: send (queue, waiting for room up to ctx),
// post (queue from the reader, never waiting), flush, done/cause (its end), shutdown.
type link struct {
	deps   linkDeps
	conn   *websocket.Conn
	cork   *corkconn.Conn // the socket under conn, corked around batches; nil if unknown
	ctx    context.Context
	cancel context.CancelCauseFunc
	q      *wsengine.Queue[noSender]
	wg     sync.WaitGroup
	lost   sync.Once // deps.lost is called at most once

	// smu guards the following fields. It is held from an envelope's stamp to its push (or
	// direct write), so that a flow's wire order is its seqId order.
	smu      sync.Mutex
	stamps   wsengine.Stamps // Own: flowID; NodeAttach used its seqId 0
	gate     *wsengine.Gate  // the sender side of credit flow control (deps.flowControl)
	released []*[]byte       // scratch for what a grant releases

	recv wsengine.RecvCredits // the receiver side; the reader's (the dialer's before start)

	// hbMu guards hb, the heartbeat timer (beat), and orders a beat's wg.Add before
	// shutdown's wg.Wait.
	hbMu sync.Mutex
	hb   *time.Timer

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

	// Owner state that lives and dies with the link (the Node's inbound security).
	waits keyWaits // envelopes waiting for an unknown signing key
	aft   bool     // pool replica whose sentinel enabled AFT stickiness
	// certGen is the certificate generation the sentinel holds for this link's keys
	// (sent in NodeAttach or the last KeyAnnounce), certNotAfter (unix nanos, 0 = none) when
	// that certificate expires: past it the sentinel refuses everything the link signs.
	certGen      atomic.Uint64
	certNotAfter atomic.Int64
}

// noSender is the sender type of a link's queue: a node's envelopes are all its own, so no
// sender's share applies (the sentinel's queues key shares by the connection they came from).
type noSender struct{}

// linkPool holds the rings and writer batches of every link's queue.
var linkPool wsengine.Pool[noSender]

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

// newLink wraps an open socket (cork is the raw connection under it, nil if unknown). The
// link is not running until start; attach may be run first on the caller's goroutine.
func newLink(conn *websocket.Conn, cork *corkconn.Conn, deps linkDeps) *link {
	l := &link{deps: deps, conn: conn, cork: cork, flowID: envelope.NewID(), traceID: envelope.NewID()}
	l.q = wsengine.NewQueue(&linkPool, nil, wsengine.Limits{Count: max(deps.sendQueue, 1), Bytes: linkQueueBytes})
	l.stamps.Own = l.flowID
	l.stamps.StartOwn(1) // NodeAttach used seqId 0
	l.gate = wsengine.NewGate(linkQueueBytes)
	l.gate.Spent(l.flowID, 1) // and one credit
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
// shutdown must say goodbye with 1000 first. CreditUpdates the attach earned are queued
// already; enabling the writer sends them.
func (l *link) start() {
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.wg.Add(1 + len(l.deps.loops))
	go l.readLoop()
	l.hbMu.Lock()
	l.hb = time.AfterFunc(l.deps.heartbeat, l.beat)
	l.hbMu.Unlock()
	for _, loop := range l.deps.loops {
		go func() {
			defer l.wg.Done()
			loop(l)
		}()
	}
	l.q.SetWriter(l.startWriter)
}

// startWriter starts a writer goroutine; the queue calls it (with its lock held, see
// wsengine.Queue.SetWriter) when a push finds the link's writing idle with no writer, so a
// link has a writer only while it has something to send. After the queue is closed (fail,
// shutdown) it is not called again, so shutdown's wg.Wait sees every writer.
func (l *link) startWriter() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.q.Run(l.ctx.Done(), l.writeBatch)
	}()
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
	l.q.Close() // senders waiting for room give up; what was queued is dropped
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
	l.q.Close()
	l.conn.CloseNow()
	// A beat that started before the cancel has joined wg (under hbMu); later ones see the
	// link ended and neither join nor re-arm the timer.
	l.hbMu.Lock()
	if l.hb != nil {
		l.hb.Stop()
	}
	l.hbMu.Unlock()
	l.wg.Wait()
	l.smu.Lock()
	l.gate.Drop(bufpool.Put)
	l.smu.Unlock()
}

// send hands an envelope (prepared by the owner: flow, hooks, signature) to the link: it is
// stamped and written at once when the link's writing is idle (direct), else queued for the
// writer goroutine, or held by the credit gate until the sentinel grants its flow credits.
// When the queue or the gate is full it waits for room up to ctx or the link's end
// (errLinkLost). An envelope that cannot be encoded is an error, not a silent drop.
func (l *link) send(ctx context.Context, env *envelope.Envelope) error {
	return l.put(ctx, env, false, true)
}

// post is send from the reader goroutine, which must never block: false when the queue or
// the credit gate is full (or the link is gone, or env cannot be encoded) and the envelope
// was not sent (logged here; the peer re-sends or times out).
func (l *link) post(env *envelope.Envelope) bool {
	err := l.put(context.Background(), env, false, false)
	if err != nil && !errors.Is(err, errLinkLost) {
		l.deps.log.Warn("envelope not sent", "id", env.ID, "frame", env.FrameType(), "err", err)
	}
	return err == nil
}

// errQueueFull: post found no room (the queue or the credit gate is full).
var errQueueFull = errors.New("node: send queue full")

// put is send and post: raw envelopes (CreditUpdates) keep the seqId/flowFlags they were built
// with and bypass the credit gate; wait says whether a full queue or gate is waited for.
func (l *link) put(ctx context.Context, env *envelope.Envelope, raw, wait bool) error {
	flow := env.FlowID
	for {
		l.smu.Lock()
		if !raw && l.deps.flowControl && l.gate.Full() {
			room := l.gate.Room()
			l.smu.Unlock()
			if !wait {
				return errQueueFull
			}
			if err := l.waitFor(ctx, room); err != nil {
				return err
			}
			continue
		}
		var seq int64
		if !raw {
			seq, env.FlowFlags = l.stamps.Next([]byte(flow))
			env.SeqID = seq
		}
		bp := bufpool.Get()
		b, err := env.AppendMarshal((*bp)[:0])
		*bp = b
		if err == nil && len(b) > envelope.MaxMessageSize {
			err = fmt.Errorf("%d bytes, above the %d-byte bound", len(b), envelope.MaxMessageSize)
		}
		if err != nil {
			if !raw {
				l.stamps.Undo([]byte(flow), seq)
			}
			l.smu.Unlock()
			bufpool.Put(bp)
			return fmt.Errorf("node: envelope %s not encodable: %w", env.ID, err)
		}
		if !raw && l.deps.flowControl && !l.gate.Admit(flow, bp) {
			l.smu.Unlock() // held: a grant releases it (grant)
			return nil
		}
		if sent, err := l.direct(bp); sent {
			l.smu.Unlock()
			if err != nil {
				// Not under smu: the owner's lost hook must be free to do anything.
				l.fail(fmt.Errorf("node: write: %w", err))
				return errLinkLost
			}
			return nil
		}
		why := l.q.Push(bp, noSender{})
		if why == wsengine.Accepted {
			l.smu.Unlock()
			return nil
		}
		if !raw { // not written after all: take the stamp and the credit back
			l.stamps.Undo([]byte(flow), seq)
			if l.deps.flowControl {
				l.gate.Refund(flow)
			}
		}
		l.smu.Unlock()
		size := len(*bp)
		bufpool.Put(bp)
		switch {
		case why == wsengine.RefusedClosed:
			return errLinkLost
		case !wait:
			return errQueueFull
		}
		if err := l.q.WaitRoom(ctx, size); err != nil {
			if errors.Is(err, wsengine.ErrClosed) {
				return errLinkLost
			}
			return err
		}
	}
}

// waitFor waits for c, or ctx's end (its error), or the link's (errLinkLost).
func (l *link) waitFor(ctx context.Context, c <-chan struct{}) error {
	var linkDone <-chan struct{}
	if l.ctx != nil {
		linkDone = l.ctx.Done()
	}
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-linkDone:
		return errLinkLost
	}
}

// direct writes the encoded envelope b on the caller's goroutine when the link's writing is
// idle (wsengine.Queue.ClaimDirect: nothing queued, no batch being written, not within a
// burst) and its owner has at most one call or request in progress (deps.busy; more go to
// the writer, which batches them). It never waits on the peer: the write is wsengine.Direct,
// and what the socket does not take at once is left corked for the writer goroutine to
// finish. sent false: b must be queued; else b is the link's, and err says the socket
// failed (the caller fails the link, outside smu). Call with smu held.
func (l *link) direct(b *[]byte) (sent bool, err error) {
	if l.cork == nil || (l.deps.busy != nil && l.deps.busy.Load() > 1) || !wsengine.CanDirect(l.cork, len(*b)) || !l.q.ClaimDirect() {
		return false, nil
	}
	out, err := wsengine.Direct(l.conn, l.cork, *b)
	if out == wsengine.Busy {
		l.q.EndDirect(false)
		return false, nil
	}
	if err == nil {
		l.showEnv("Sent envelope 🚀", *b)
	}
	bufpool.Put(b)
	l.q.EndDirect(out == wsengine.Partial && err == nil)
	return true, err
}

// flush waits until everything queued so far has been written (what the credit gate holds
// is not waited for), or ctx ends, or the link does.
func (l *link) flush(ctx context.Context) {
	_ = l.q.WaitWritten(ctx, l.q.Mark())
}

// errLinkLost: the link ended while an envelope waited to be queued; callers that can wait
// for the next link retry.
var errLinkLost = errors.New("node: connection lost")

// writeBatch is the writer goroutine's write (wsengine.Queue.Run): the batch in one system
// call, the socket corked while the envelopes are encoded into it. An empty batch flushes
// what a direct write left in the cork. False ends the writer: the link has failed.
func (l *link) writeBatch(batch []wsengine.Item[noSender]) bool {
	if l.cork != nil {
		l.cork.Cork()
	}
	for _, it := range batch {
		// No cancellable context: the library would arm and disarm a context.AfterFunc for
		// every message. A stuck write still ends, because every path that cancels l.ctx
		// (fail, shutdown) also closes the socket.
		if err := l.conn.Write(context.Background(), websocket.MessageBinary, *it.B); err != nil {
			l.fail(fmt.Errorf("node: write: %w", err))
			return false
		}
		l.showEnv("Sent envelope 🚀", *it.B)
	}
	if l.cork != nil {
		if err := l.cork.Uncork(0); err != nil {
			l.fail(fmt.Errorf("node: write: %w", err))
			return false
		}
	}
	return true
}

// grant applies a CreditUpdate from the sentinel (reader goroutine): the envelopes the gate
// held for the flow that may now go are queued, in order, past the queue's bounds (the gate
// bounded them already).
func (l *link) grant(flow string, credits int) {
	if flow == "" || credits <= 0 || !l.deps.flowControl {
		return
	}
	l.smu.Lock()
	rel := l.gate.Grant(flow, credits, l.released[:0])
	for i, b := range rel {
		if l.q.PushOver(b) != wsengine.Accepted {
			bufpool.Put(b) // closed: the link is gone
		}
		rel[i] = nil
	}
	l.released = rel[:0]
	l.smu.Unlock()
}

func (l *link) readLoop() {
	defer l.wg.Done()
	for {
		// Not cancelled by ctx: see writeBatch (fail and shutdown close the socket).
		buf, err := wsengine.ReadMessage(context.Background(), l.conn)
		if err != nil {
			if buf != nil {
				bufpool.Put(buf)
			}
			l.fail(fmt.Errorf("node: read: %w", err))
			return
		}
		// The decoded envelope keeps slices of its message: one copy at the message's size.
		msg := append([]byte(nil), *buf...)
		bufpool.Put(buf)
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
			l.grant(cu.FlowID, cu.Credits)
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

// credit is countCredit for an envelope known not to be a CreditUpdate. The CreditUpdate is
// queued, or written at once, never waited for: a full queue means the socket is stuck, and
// the refusal is logged.
func (l *link) credit(env *envelope.Envelope) {
	if !l.deps.flowControl || env.FlowID == "" || !l.recv.Count([]byte(env.FlowID)) {
		return
	}
	cu, err := envelope.New(&envelope.CreditUpdate{FlowID: env.FlowID, Credits: creditWindow})
	if err != nil {
		return
	}
	cu.TraceID, cu.FlowID, cu.SeqID, cu.FlowFlags = env.TraceID, env.FlowID, 0, envelope.FlowAck
	if err := l.put(context.Background(), cu, true, false); err != nil && !errors.Is(err, errLinkLost) {
		l.deps.log.Warn("CreditUpdate not sent", "flow", env.FlowID, "err", err)
	}
}

// heartbeatAcked records a NodeHeartbeatAck the owner accepted as the sentinel's.
func (l *link) heartbeatAcked() { l.lastAck.Store(time.Now().UnixNano()) }

// beat is one NodeHeartbeat, run by the link's timer (hb) every heartbeat interval: a
// timer rather than a goroutine, so that an idle link costs its reader goroutine only. The
// link fails when two intervals passed without an acknowledgement.
func (l *link) beat() {
	l.hbMu.Lock()
	if l.ctx.Err() != nil { // ended: shutdown has stopped the timer or is about to
		l.hbMu.Unlock()
		return
	}
	l.wg.Add(1) // under hbMu, before shutdown's wg.Wait (see shutdown)
	l.hbMu.Unlock()
	defer l.wg.Done()
	iv := l.deps.heartbeat
	if time.Since(time.Unix(0, l.lastAck.Load())) > 2*iv {
		l.deps.log.Warn("missed heartbeat acknowledgement, reconnecting")
		l.fail(errors.New("node: missed heartbeat acknowledgement"))
		return
	}
	env, err := envelope.New(&envelope.NodeHeartbeat{})
	if err == nil {
		env.SID, env.TraceID, env.CorrID, env.FlowID = l.sid, l.traceID, envelope.NewID(), l.flowID
		err = l.deps.seal(env)
	}
	if err == nil {
		err = l.send(l.ctx, env)
	}
	if err != nil && l.ctx.Err() == nil {
		l.deps.log.Warn("heartbeat not sent", "err", err)
	}
	l.hbMu.Lock()
	if l.ctx.Err() == nil {
		l.hb.Reset(iv)
	}
	l.hbMu.Unlock()
}
