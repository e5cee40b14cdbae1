package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/fame-go/fame/internal/lru"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/corkconn"
	"github.com/fame-go/fame/security"
)

// Credit constants of the reference connector: a window of 32 per flow, refilled once the
// receiver has consumed 24 (its counter at the 0.25 low watermark).
const (
	creditWindow    = 32
	creditThreshold = 24
	creditFlows     = 4096 // received flows tracked per session (LRU; idle flows fall out)
)

// outItem is one envelope queued for the writer. Raw items (CreditUpdates) keep the
// seqId/flowFlags they were built with and do not advance the flow's counter.
type outItem struct {
	env *envelope.Envelope
	raw bool
	// done, on an item without env, is a flush marker: the writer closes it when it gets
	// there, so everything queued before it has been written (or held for credit).
	done chan struct{}
}

// flush waits until the writer has reached everything queued so far, or ctx ends.
func (s *session) flush(ctx context.Context) {
	done := make(chan struct{})
	if s.enqueue(ctx, outItem{done: done}) != nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// session is one attached WebSocket connection. Its reader, writer and heartbeat goroutines
// all end when ctx is cancelled; wg waits for them.
type session struct {
	n      *Node
	conn   *websocket.Conn
	cork   *corkconn.Conn // the socket under conn, corked around batches; nil if unknown
	ctx    context.Context
	cancel context.CancelCauseFunc
	sendq  chan outItem
	wg     sync.WaitGroup

	flowID       string // this node's session flow on this connection
	traceID      string // trace id of this session's control traffic (binds, heartbeats)
	assignedPath string
	parentPath   string // the sentinel's physical path (NodeAttachAck.targetPhysicalPath)
	parentSID    string // the sid on the NodeAttachAck envelope (the sentinel's)
	sid          string
	sysInbox     string
	rpcInbox     string
	epoch        atomic.Pointer[string]
	lastAck      atomic.Int64 // unix nanos of the last NodeHeartbeatAck (or attach)

	credits       *lru.Cache[string, int] // reader-owned counters per received flowId
	grants        *creditGrants           // CreditUpdates received, for the writer
	pendingCredit []*envelope.Envelope    // credits earned during attach, sent by start

	waits keyWaits // envelopes waiting for an unknown signing key
	aft   bool     // pool replica whose sentinel enabled AFT stickiness
	// certGen is the certificate generation the sentinel holds for this session's keys
	// (sent in NodeAttach or the last KeyAnnounce).
	certGen atomic.Uint64
}

// dial opens the socket, runs the attach handshake and returns a session that is not yet
// running (start launches its goroutines).
func (n *Node) dial(ctx context.Context) (*session, error) {
	cfg := &n.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.AttachTimeout)
	defer cancel()
	var cork atomic.Pointer[corkconn.Conn]
	opts := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled, HTTPClient: corkingClient(cfg.HTTPClient, &cork)}
	// The URL, the token and the logicals come from the same welcome grant: fetch the grant
	// (URL) first so the other two read the cached one.
	base, err := n.attachURL(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Token != nil {
		tok, err := cfg.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("node: admission token: %w", err)
		}
		opts.Subprotocols = []string{"bearer", tok}
	}
	logicals, err := n.attachLogicals(ctx)
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(base, "/") + "/" + cfg.SystemID
	conn, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("node: dial %s: %w", url, err)
	}
	conn.SetReadLimit(envelope.MaxMessageSize + 64<<10)

	s := &session{n: n, conn: conn, cork: cork.Load(), flowID: envelope.NewID(), traceID: envelope.NewID()}
	s.credits, _ = lru.New[string, int](creditFlows)
	s.grants = newCreditGrants()
	s.waits.kids = map[string]*keyWait{}
	ack, err := s.attach(ctx, logicals)
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	s.assignedPath = ack.AssignedPath
	s.parentPath = ack.TargetPhysicalPath
	if s.parentPath == "" {
		s.parentPath = ack.TargetPhysicalPathSnake
	}
	if ns := n.sec; ns != nil {
		parent := s.parentPath
		for i, raw := range ack.Keys {
			j, err := security.ParseJWK(raw)
			if err == nil {
				// The sentinel is authenticated by the attach itself (the socket we dialled); its
				// certificate, if any, names its own trust domain and is not ours to check.
				j.X5C = nil
				err = ns.keys.Add(j, parent)
			}
			if err != nil {
				n.log.Warn("invalid sentinel key skipped", "index", i, "err", err)
			}
		}
		s.aft = isReplica(cfg.RequestedLogicals) && aftEnabled(ack.Stickiness)
	}
	s.sid = envelope.SecureDigest(ack.AssignedPath)
	s.sysInbox = "__sys__@" + ack.AssignedPath
	s.rpcInbox = "__rpc__" + n.rpcID + "@" + ack.AssignedPath
	s.epoch.Store(&ack.RoutingEpoch)
	s.lastAck.Store(time.Now().UnixNano())
	return s, nil
}

// attach sends NodeAttach as the first message and reads until the NodeAttachAck.
// logicals are the acceptedLogicals to send (see Node.attachLogicals).
func (s *session) attach(ctx context.Context, logicals []string) (*envelope.NodeAttachAck, error) {
	cfg := &s.n.cfg
	f := &envelope.NodeAttach{OriginType: "downstream", SystemID: cfg.SystemID, InstanceID: cfg.InstanceID, AcceptedLogicals: logicals}
	if ns := s.n.sec; ns != nil {
		var gen uint64
		f.Keys, gen = ns.publicKeys()
		s.certGen.Store(gen)
		if isReplica(cfg.RequestedLogicals) {
			f.Stickiness = stickinessOffer
		}
	}
	env, err := envelope.New(f)
	if err != nil {
		return nil, err
	}
	env.TraceID, env.CorrID, env.FlowID = envelope.NewID(), envelope.NewID(), s.flowID
	env.SeqID, env.FlowFlags = 0, envelope.FlowSyn
	if err := s.n.runHooks(cfg.Outbound, env); err != nil {
		return nil, fmt.Errorf("node: outbound hook on NodeAttach: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	s.n.show("Sent envelope 🚀", b)
	if err := s.conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		return nil, attachFailure(err, "writing NodeAttach")
	}
	for {
		_, msg, err := s.conn.Read(ctx)
		if err != nil {
			return nil, attachFailure(err, "connector closed while waiting for NodeAttachAck")
		}
		s.n.show("Received envelope 📨", msg)
		in, err := envelope.Decode(msg)
		if err != nil {
			s.n.log.Warn("dropping undecodable envelope during attach", "err", err)
			continue
		}
		s.countCredit(in)
		if in.FrameType() != envelope.TypeNodeAttachAck {
			continue
		}
		f, err := in.DecodeFrame()
		if err != nil {
			return nil, &AttachError{CloseCode: -1, Reason: "bad NodeAttachAck: " + err.Error()}
		}
		ack := f.(*envelope.NodeAttachAck)
		s.parentSID = in.SID
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

// start launches the session's goroutines. Their context is not derived from the node's: a
// cancelled read makes the WebSocket library drop the socket without a close frame, and Close
// must say goodbye with 1000 first (see shutdown).
func (s *session) start() {
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.sendq = make(chan outItem, s.n.cfg.SendQueue)
	for _, cu := range s.pendingCredit {
		s.sendq <- outItem{env: cu, raw: true}
	}
	s.pendingCredit = nil
	s.wg.Add(3)
	go s.readLoop()
	go s.writeLoop()
	go s.heartbeatLoop()
	if s.n.sec != nil {
		s.wg.Add(1)
		go s.keyLoop()
	}
}

// fail ends the session (first cause wins); the supervisor then reconnects.
func (s *session) fail(cause error) {
	s.cancel(cause)
	s.conn.CloseNow()
}

// shutdown closes the socket in order (1000) and waits for the goroutines.
func (s *session) shutdown() {
	if s.ctx.Err() == nil {
		_ = s.conn.Close(websocket.StatusNormalClosure, "normal closure")
	}
	s.cancel(ErrClosed)
	s.conn.CloseNow()
	s.wg.Wait()
}

// enqueue hands an envelope to the writer without blocking past ctx or the session's end.
func (s *session) enqueue(ctx context.Context, it outItem) error {
	select {
	case s.sendq <- it:
		return nil
	case <-s.ctx.Done():
		return errSessionLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errSessionLost = errors.New("node: connection lost")

func (s *session) writeLoop() {
	defer s.wg.Done()
	w := &writer{s: s, seq: map[string]int64{s.flowID: 0}, buf: make([]byte, 0, 4096)} // NodeAttach used seqId 0
	gate := newSenderCredits()
	gate.credits[s.flowID] = creditWindow - 1 // NodeAttach spent one
	flow := !s.n.cfg.DisableFlowControl
	for {
		sendq := s.sendq
		if flow && gate.full() {
			sendq = nil // stop taking more until grants drain the held envelopes
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.grants.wake:
			if !w.flush(gate.grant(s.grants.take())) {
				return
			}
		case it := <-sendq:
			if !w.batch(gate, flow, it) {
				return
			}
		}
	}
}

// flush writes envelopes released by credit grants as one corked batch. False ends the writer.
func (w *writer) flush(items []outItem) bool {
	if len(items) == 0 {
		return true
	}
	s := w.s
	if s.cork != nil {
		s.cork.Cork()
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
	if s := w.s; s.cork != nil {
		if err := s.cork.Uncork(0); err != nil && ok {
			s.fail(fmt.Errorf("node: write: %w", err))
			return false
		}
	}
	return ok
}

// maxBatch bounds how many queued envelopes one flush carries.
const maxBatch = 128

// batch writes it and whatever else is already queued (up to maxBatch) with the socket
// corked, so the kernel sees one write(2) for the lot. False ends the writer.
func (w *writer) batch(gate *senderCredits, flow bool, it outItem) bool {
	s := w.s
	if s.cork != nil {
		s.cork.Cork()
	}
	ok := true
	for n := 0; ; n++ {
		if it.done != nil {
			close(it.done)
		} else if !flow || gate.admit(it) {
			if ok = w.write(it); !ok {
				break
			}
		}
		if n+1 >= maxBatch || (flow && gate.full()) {
			break
		}
		select {
		case it = <-s.sendq:
			continue
		default:
		}
		break
	}
	return w.uncork(ok)
}

// writer stamps and writes envelopes; only the writer goroutine uses it.
type writer struct {
	s   *session
	seq map[string]int64
	buf []byte
}

// write stamps seqId/flowFlags (raw items keep theirs) and writes; false ends the writer.
func (w *writer) write(it outItem) bool {
	s, e := w.s, it.env
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
		s.n.log.Error("dropping unencodable envelope", "id", e.ID, "err", err)
		return true
	}
	if len(w.buf) > envelope.MaxMessageSize {
		s.n.log.Error("dropping oversize envelope", "id", e.ID, "bytes", len(w.buf))
		return true
	}
	s.n.show("Sent envelope 🚀", w.buf)
	// No cancellable context: the library would arm and disarm a context.AfterFunc for every
	// message. A stuck write still ends, because every path that cancels s.ctx (fail,
	// shutdown) also closes the socket.
	if err := s.conn.Write(context.Background(), websocket.MessageBinary, w.buf); err != nil {
		s.fail(fmt.Errorf("node: write: %w", err))
		return false
	}
	return true
}

func (s *session) readLoop() {
	defer s.wg.Done()
	for {
		_, msg, err := s.conn.Read(context.Background()) // see writer.write: fail and shutdown close the socket
		if err != nil {
			s.fail(fmt.Errorf("node: read: %w", err))
			return
		}
		s.n.show("Received envelope 📨", msg)
		env, err := envelope.Decode(msg)
		if err != nil {
			s.n.log.Warn("dropping undecodable envelope", "err", err)
			continue
		}
		if err := s.n.runHooks(s.n.cfg.Inbound, env); err != nil {
			s.n.log.Debug("inbound hook dropped envelope", "id", env.ID, "err", err)
			continue
		}
		s.countCredit(env)
		s.receive(env)
	}
}

// countCredit is the receiver side of credit flow control: after creditThreshold envelopes
// of one flow it grants the sender a fresh window. Runs on the reader goroutine only (and on
// the dialing goroutine before the reader exists).
func (s *session) countCredit(env *envelope.Envelope) {
	if s.n.cfg.DisableFlowControl || env.FlowID == "" || env.FrameType() == envelope.TypeCreditUpdate {
		return
	}
	c, _ := s.credits.Get(env.FlowID)
	c++
	if c < creditThreshold {
		s.credits.Add(env.FlowID, c)
		return
	}
	s.credits.Add(env.FlowID, 0)
	cu, err := envelope.New(&envelope.CreditUpdate{FlowID: env.FlowID, Credits: creditWindow})
	if err != nil {
		return
	}
	cu.TraceID, cu.FlowID, cu.SeqID, cu.FlowFlags = env.TraceID, env.FlowID, 0, envelope.FlowAck
	if s.sendq == nil {
		s.pendingCredit = append(s.pendingCredit, cu)
		return
	}
	// Never block the reader: the queue is long, and a full queue means the socket is stuck.
	select {
	case s.sendq <- outItem{env: cu, raw: true}:
	default:
		s.n.log.Warn("send queue full, CreditUpdate dropped", "flow", env.FlowID)
	}
}

func (s *session) heartbeatLoop() {
	defer s.wg.Done()
	iv := s.n.cfg.HeartbeatInterval
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, s.lastAck.Load())) > 2*iv {
			s.n.log.Warn("missed heartbeat acknowledgement, reconnecting")
			s.fail(errors.New("node: missed heartbeat acknowledgement"))
			return
		}
		env, err := envelope.New(&envelope.NodeHeartbeat{})
		if err != nil {
			continue
		}
		env.SID, env.TraceID, env.CorrID, env.FlowID = s.sid, s.traceID, envelope.NewID(), s.flowID
		if err := s.n.sendOn(s.ctx, s, env); err != nil && s.ctx.Err() == nil {
			s.n.log.Warn("heartbeat not sent", "err", err)
		}
	}
}
