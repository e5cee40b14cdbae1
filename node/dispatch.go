package node

import (
	"strings"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// dispatch handles one received envelope on the reader goroutine (CreditUpdates never get
// here: the link applies them). It must not block: user code runs in handler goroutines and
// waiters are mailboxes. ch is the secure channel a Data payload arrived on (nil for
// plaintext). sender is who sent it as the replay guard keys it ("kid:…" when signed,
// "sid:…" when not; "" on open nodes): the reply cache answers a re-send only to its sender.
func (n *Node) dispatch(l *link, env *envelope.Envelope, ch *security.Channel, sender string) {
	switch env.FrameType() {
	case envelope.TypeData:
		n.onData(l, env, ch, sender)
	case envelope.TypeDeliveryAck:
		n.onDeliveryAck(env)
	case envelope.TypeNodeHeartbeatAck:
		l.heartbeatAcked()
		f, err := env.DecodeFrame()
		if err != nil {
			return
		}
		n.heartbeatAck(f.(*envelope.NodeHeartbeatAck).Payload) // replica drain status (drain.go)
		if ep := f.(*envelope.NodeHeartbeatAck).RoutingEpoch; ep != "" {
			if old := l.epoch.Swap(&ep); old != nil && *old != "" && *old != ep {
				n.log.Info("routing epoch changed, re-binding", "old", *old, "new", ep)
				select {
				case n.rebindC <- struct{}{}:
				default:
				}
			}
		}
	case envelope.TypeAddressBindAck, envelope.TypeAddressUnbindAck,
		envelope.TypeCapabilityAdvertiseAck, envelope.TypeCapabilityWithdrawAck:
		n.onControlAck(env)
	case envelope.TypeSecureClose:
		n.onSecureClose(env)
	case envelope.TypeSecureOpen:
		if n.sec != nil {
			n.onSecureOpen(l, env)
		}
	case envelope.TypeSecureAccept:
		if n.sec != nil {
			n.onSecureAccept(env)
		}
	case envelope.TypeKeyAnnounce:
		// Stored only after verification, by deliverSecured; unsecured nodes keep no keys.
	default:
		n.log.Debug("ignoring frame", "type", env.FrameType(), "id", env.ID)
	}
}

func (n *Node) onData(l *link, env *envelope.Envelope, ch *security.Channel, sender string) {
	wantsAck := env.RType.Has(envelope.RTypeAck) && env.ReplyTo != ""
	if env.ID != "" {
		if dup, _ := n.seen.ContainsOrAdd(env.ID, struct{}{}); dup {
			// A re-send: our ack (or reply) was lost. Never process twice: the reply cache
			// sends the reply again (or acks a request still running).
			n.onResend(l, env, ch, sender)
			return
		}
	}
	participant, _, _ := envelope.SplitInbox(env.To)
	reply := strings.HasPrefix(participant, "__rpc__") || participant == "__sys__"
	var reg *registration
	if !reply {
		reg = n.lookup(env.To, env.Capabilities)
	}
	if reg != nil {
		n.replies.begin(env, sender)
		if !n.runHandler(job{r: reg, env: env, ch: ch}, func() {
			if wantsAck {
				n.sendAck(l, env)
			}
		}) {
			// Not acknowledged and forgotten: an at-least-once sender may re-send it later.
			n.seen.Remove(env.ID)
			n.replies.abort(env.ID)
			n.refused.inc(RefusedOverloaded)
			n.log.Warn("request refused: handlers and their queue are full", "from", env.ReplyTo, "sid", env.SID, "id", env.ID,
				"max_handlers", n.cfg.MaxHandlers, "queue", n.cfg.HandlerQueue)
			n.sendNack(l, env, envelope.CodeOverloaded, "node overloaded: too many requests in progress")
		}
		return
	}
	if wantsAck {
		n.sendAck(l, env)
	}
	if reply {
		if w := n.pend.byCorrID(env.CorrID); w != nil {
			f, err := env.DecodeFrame()
			if err != nil {
				return
			}
			w.push(event{kind: evReply, payload: f.(*envelope.Data).Payload, from: env.ReplyTo, sid: env.SID})
		} else {
			n.log.Debug("reply for no pending call", "corrId", env.CorrID)
		}
		return
	}
	n.log.Debug("request for an address this node does not serve", "to", env.To)
	n.sendNack(l, env, envelope.CodeNoRoute, "No service "+env.To+" on this node")
}

// sendAck sends the end-to-end positive DeliveryAck the at-least-once sender waits for.
func (n *Node) sendAck(l *link, req *envelope.Envelope) {
	n.sendDeliveryAck(l, req, envelope.Ack{OK: true, RefID: req.ID})
}

func (n *Node) sendNack(l *link, req *envelope.Envelope, code, reason string) {
	if req.ReplyTo == "" || req.CorrID == "" {
		return
	}
	n.sendDeliveryAck(l, req, envelope.Ack{OK: false, Code: code, Reason: reason, RefID: req.ID})
}

func (n *Node) sendDeliveryAck(l *link, req *envelope.Envelope, a envelope.Ack) {
	env, err := envelope.New(&envelope.DeliveryAck{Ack: a})
	if err != nil {
		return
	}
	env.SID, env.TraceID, env.To, env.CorrID = l.sid, req.TraceID, req.ReplyTo, req.CorrID
	n.post(l, env) // from the reader: never block it
}

func (n *Node) onDeliveryAck(env *envelope.Envelope) {
	f, err := env.DecodeFrame()
	if err != nil {
		return
	}
	a := f.(*envelope.DeliveryAck)
	w := n.pend.byEnvID(a.RefID)
	if w == nil && !a.OK && env.CorrID != "" {
		w = n.pend.byCorrID(env.CorrID)
	}
	if w == nil {
		n.replyNack(env, a.Ack)
		return
	}
	ev := ackEvent(a.Ack)
	ev.ref = a.RefID
	w.push(ev)
}

func (n *Node) onControlAck(env *envelope.Envelope) {
	w := n.pend.byCorrID(env.CorrID)
	if w == nil {
		return
	}
	f, err := env.DecodeFrame()
	if err != nil {
		return
	}
	var a envelope.Ack
	switch v := f.(type) {
	case *envelope.AddressBindAck:
		a = v.Ack
	case *envelope.AddressUnbindAck:
		a = v.Ack
	case *envelope.CapabilityAdvertiseAck:
		a = v.Ack
	case *envelope.CapabilityWithdrawAck:
		a = v.Ack
	default:
		return
	}
	w.push(ackEvent(a))
}

func ackEvent(a envelope.Ack) event {
	if a.OK {
		return event{kind: evAck}
	}
	return event{kind: evNack, nack: &NackError{Code: a.Code, Reason: a.Reason}}
}
