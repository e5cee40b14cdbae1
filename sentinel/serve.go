package sentinel

import (
	"context"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/bufpool"
	"github.com/fame-go/fame/internal/wsengine"
	"github.com/fame-go/fame/tracing"
)

// serve runs the connection: it waits for NodeAttach, then reads and routes envelopes until
// the socket closes. It owns the connection's lifetime.
func (c *conn) serve() {
	defer c.s.wg.Done()
	s := c.s
	// One goroutine per idle connection: this reader. A writer runs only while something is
	// queued for the peer (wsengine.Queue.SetWriter), from the attach on. Reads after the attach
	// take no context: a context would cost a registration on every read, and Shutdown (like
	// every other end of the connection) closes the socket, which ends the read. Liveness
	// pings run only for nodes that serve addresses.
	defer c.close(websocket.StatusNormalClosure, "connection closed")
	defer c.flushOwed() // what the last reads routed; the hook ran before each read

	attachCtx, cancel := context.WithTimeout(s.ctx, s.opts.AttachTimeout)
	typ, msg, err := c.ws.Read(attachCtx)
	cancel()
	if err != nil {
		c.log.Warn("no NodeAttach", "err", err)
		c.close(websocket.StatusPolicyViolation, "expected NodeAttach within "+s.opts.AttachTimeout.String())
		return
	}
	_ = typ
	err = c.handleAttach(msg)
	if s.tracer != nil {
		s.traceAttach(c, attachTraceID(msg), err)
	}
	if err != nil {
		c.log.Warn("attach refused", "err", err)
		c.refuseAttach(msg, err)
		s.metrics.attachRefused.WithLabelValues("attach").Inc()
		s.metrics.recent.add("attach", c.urlID, c.remote, err.Error())
		c.close(attachCloseCode(err), strings.TrimPrefix(err.Error(), errAttach.Error()+": "))
		return
	}
	c.q.SetWriter(c.startWriter) // starts writing the NodeAttachAck, queued already
	c.lastRx.Store(time.Now().UnixNano())

	var h envelope.Header
	for {
		if !c.readOne(&h) {
			return
		}
	}
}

// readOne reads and dispatches one message; false means the connection is done.
func (c *conn) readOne(h *envelope.Header) bool {
	s := c.s
	// Nothing on the dispatch path keeps a reference to the message after dispatch returns
	// (forwarding copies it into an outbound buffer, everything remembered is converted to
	// strings), so the buffer goes back to the pool at once and serves message after message.
	buf, err := wsengine.ReadMessage(context.Background(), c.ws)
	if buf != nil {
		defer bufpool.Put(buf)
	}
	if err != nil {
		c.readFailed(err)
		return false
	}
	msg := *buf
	c.rx.Add(1)
	c.lastRx.Store(time.Now().UnixNano())
	if err := envelope.ParseHeader(msg, h); err != nil {
		// A peer that sends what is not an envelope is broken or hostile; say why and
		// drop it rather than guess at what it meant.
		s.metrics.malformed.Inc()
		c.log.Warn("malformed envelope, closing", "err", err, "bytes", len(msg))
		c.close(websocket.StatusInvalidFramePayloadData, "malformed envelope: "+err.Error())
		return false
	}
	if s.opts.ShowEnvelopes {
		s.showEnvelope("Received envelope from "+c.systemID+" 📨", msg)
	}
	c.countCredit(h)
	s.dispatch(c, msg, h)
	return true
}

func (c *conn) readFailed(err error) {
	switch st := websocket.CloseStatus(err); {
	case st == websocket.StatusNormalClosure || st == websocket.StatusGoingAway:
		c.close(st, "peer closed")
	case st == websocket.StatusMessageTooBig:
		c.close(websocket.StatusMessageTooBig, "message too big")
	case st != -1:
		c.close(websocket.StatusNormalClosure, "peer closed with "+st.String())
	default:
		msg := err.Error()
		if strings.Contains(msg, "read limited at") {
			c.s.metrics.malformed.Inc()
			c.log.Warn("message over size limit, closing", "limit", envelope.MaxMessageSize)
			c.close(websocket.StatusMessageTooBig, "message exceeds 262144 bytes")
			return
		}
		c.close(websocket.StatusGoingAway, "read failed: "+msg)
	}
}

// countCredit is the receiver side of credit flow control: after 24 envelopes on a flow the
// peer gets CreditUpdate{flow, 32}, before its 32 credits run out. Without this, reference
// peers stall after 32 envelopes.
func (c *conn) countCredit(h *envelope.Header) {
	if string(h.FrameType) == envelope.TypeCreditUpdate || len(h.FlowID) == 0 {
		return
	}
	if c.recv.Count(h.FlowID) {
		c.sendCredit(string(h.FlowID), string(h.TraceID))
	}
}

// refuseAttach tells the peer why its NodeAttach was refused with a negative NodeAttachAck (as
// the reference does for certificate failures) before the connection is closed.
func (c *conn) refuseAttach(msg []byte, why error) {
	var h envelope.Header
	if envelope.ParseHeader(msg, &h) != nil || string(h.FrameType) != envelope.TypeNodeAttach {
		return
	}
	ack := &envelope.NodeAttachAck{Ack: envelope.Ack{OK: false, RefID: string(h.ID),
		Code: attachCode(why), Reason: strings.TrimPrefix(why.Error(), errAttach.Error()+": ")}}
	ack.RefIDSnake = ack.RefID
	e, err := envelope.New(ack)
	if err != nil {
		return
	}
	e.SID, e.TraceID, e.CorrID, e.FlowID, e.FlowFlags = c.s.sid, string(h.TraceID), string(h.CorrID), c.flowID, envelope.FlowSyn
	b, err := e.Marshal()
	if err != nil {
		return
	}
	// Written directly (nothing else is queued before attach) so that it is on the wire
	// before the close frame.
	ctx, cancel := context.WithTimeout(c.s.ctx, time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageBinary, b)
}

// handleAttach processes the first message, which must be NodeAttach.
func (c *conn) handleAttach(msg []byte) error {
	s := c.s
	e, err := envelope.Decode(msg)
	if err != nil {
		return attachErr("first message is not an envelope: %v", err)
	}
	if e.FrameType() != envelope.TypeNodeAttach {
		return attachErr("expected NodeAttach, got %s", e.FrameType())
	}
	f, err := e.DecodeFrame()
	if err != nil {
		return attachErr("NodeAttach: %v", err)
	}
	na := f.(*envelope.NodeAttach)
	if na.SystemID == "" {
		return attachErr("Missing system id")
	}
	if err := validSystemID(na.SystemID); err != nil {
		s.securityRefusal(c, refusalSystemIDInvalid, err.Error())
		return &attachRefusal{code: codeInvalidSystemID, reason: err.Error()}
	}
	if err := s.drainAttachRefusal(c); err != nil {
		return err
	}
	if na.SystemID != c.urlID {
		return attachErr("NodeAttach systemId %q does not match URL system id %q", na.SystemID, c.urlID)
	}
	if na.SystemID == s.id {
		return attachErr("Self attachment not allowed")
	}
	if c.principal != nil && c.principal.SystemID != "" && c.principal.SystemID != na.SystemID {
		return attachErr("credentials are for system id %q, not %q", c.principal.SystemID, na.SystemID)
	}
	if c.principal != nil && c.principal.InstanceID != "" && na.InstanceID != "" && c.principal.InstanceID != na.InstanceID {
		return attachErr("credentials are for instance %q, not %q", c.principal.InstanceID, na.InstanceID)
	}
	if err := s.checkAttachGrant(c, na); err != nil {
		return err
	}
	c.systemID = na.SystemID
	c.path = s.path + "/" + na.SystemID
	if c.origin == "peer" {
		c.path = "/" + na.SystemID
	}
	if na.AssignedPath != "" && na.AssignedPath != c.path {
		return attachErr("requested path %q is not under this sentinel (%q)", na.AssignedPath, c.path)
	}
	c.logicals = na.AcceptedLogicals
	c.sid = envelope.SecureDigest(c.path)
	c.attachedAt = time.Now()

	release, err := s.claimSystemID(c, e, na)
	if err != nil {
		return err
	}
	defer release()
	if err := s.claimClusterSystemID(c, na); err != nil {
		return err
	}
	if err := s.sec.attachKeys(c, na); err != nil {
		if attachCode(err) != "" {
			return err
		}
		return attachErr("keys: %v", err)
	}
	ack := envelope.NewNodeAttachAck(e.ID, s.id, c.path, s.path, s.epoch)
	ack.Stickiness = s.sticky.negotiate(na.Stickiness)
	ack.Keys = s.sec.ackKeys()
	out, err := envelope.New(ack)
	if err != nil {
		return attachErr("encode ack: %v", err)
	}
	out.SID, out.TraceID, out.CorrID = s.sid, e.TraceID, e.CorrID
	if s.tracer != nil {
		out.Meta = tracing.AttachAckMeta() // a Go node parents its serve spans on our route spans
	}
	if old := s.routes.attach(c); old != nil {
		c.log.Info("node re-attached; replacing its previous connection", "old_remote", old.ident().remote)
		s.sticky.replicaGone(old)
		old.close(websocket.StatusNormalClosure, "replaced by a new attach of the same system id")
	}
	release() // before the ack: a peer that has its ack may re-attach at once
	c.sendOwn(out, 0)
	c.log.Info("node attached", "path", c.path, "logicals", c.logicals, "instance", na.InstanceID)
	s.metrics.attaches.Inc()
	return nil
}

// dispatch acts on one envelope received from c.
func (s *Sentinel) dispatch(c *conn, msg []byte, h *envelope.Header) {
	ft := string(h.FrameType)
	s.metrics.received(h.FrameType)
	// Control frames are checked too: under overlay an unsigned bind must not change routes.
	if !s.sec.inbound(c, msg, h) {
		return
	}
	switch ft {
	case envelope.TypeCreditUpdate:
		return // hop-local; we do not block senders on credits (see package doc)
	case envelope.TypeNodeHeartbeat:
		s.ackHeartbeat(c, h, msg)
		return
	case envelope.TypeAddressBind, envelope.TypeAddressUnbind,
		envelope.TypeCapabilityAdvertise, envelope.TypeCapabilityWithdraw:
		s.handleControl(c, msg)
		return
	case envelope.TypeNodeAttach:
		c.log.Warn("NodeAttach on an attached connection ignored")
		return
	case envelope.TypeNodeHello, envelope.TypeNodeWelcome, envelope.TypeNodeReject:
		c.log.Debug("dropping admission frame received in band", "frame", ft)
		return
	}
	if (ft == envelope.TypeKeyRequest || ft == envelope.TypeKeyAnnounce) && s.sec.keyFrame(c, msg, h) {
		return
	}
	if len(h.To) == 0 && ft == envelope.TypeKeyRequest && len(h.FrameAddress) > 0 {
		s.route(c, msg, h, h.FrameAddress)
		return
	}
	if len(h.To) == 0 {
		if strings.HasSuffix(ft, "Ack") || ft == envelope.TypeKeyRequest {
			return // addressed to the sentinel itself
		}
		s.routeByCapabilities(c, msg, h)
		return
	}
	s.route(c, msg, h, h.To)
}
