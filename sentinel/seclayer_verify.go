package sentinel

import (
	"bytes"
	"errors"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// inbound checks an envelope from c before it is routed (security.md §2.3). It returns false
// when the envelope must not be routed; it has then answered (nack) and logged as
// appropriate. Unlike the reference, which drops unsigned envelopes silently and lets a bad
// signature kill the connection's receive loop, a refusal costs only that envelope, and the
// sender hears why when it is waiting for an answer.
func (l *secLayer) inbound(c peer, msg []byte, h *envelope.Header) bool {
	if l == nil {
		return true
	}
	ft := string(h.FrameType)
	if ft == envelope.TypeCreditUpdate {
		// Hop-local flow control that the sentinel does not act on (see package doc); Go nodes
		// send it unsigned, and refusing it would only stall their flows.
		return true
	}
	if !l.profile.RequiresSignature(ft, originOf(c)) {
		return true
	}
	if !h.HasSig {
		l.refuseEnvelope(c, h, codeSignatureRequired, "signature required for "+ft)
		return false
	}
	e, err := envelope.Decode(msg)
	if err != nil {
		// ParseHeader accepted it, so this is a frame or sec member of the wrong shape.
		l.refuseEnvelope(c, h, codeSignatureFailed, "signature verification failed: "+err.Error())
		return false
	}
	k, err := l.keys.Verify(e, true)
	if err != nil {
		l.refuseEnvelope(c, h, verifyCode(err), verifyReason(e, err))
		return false
	}
	if !keyBelongs(c, k.PhysicalPath) {
		// A valid signature by someone else's key: a replayed or relayed envelope of another
		// node. What a connection sends must be signed by a key of its own subtree. This holds
		// for origin "peer" connections as well: the peer route is open to anyone who may
		// attach, and a real peer sentinel's subtree keys are registered under its own path
		// (its KeyAnnounce for /<peer>/...), so it relays nothing signed outside that subtree.
		reason := "envelope signed by a key of " + k.PhysicalPath + ", not of the sending connection " + c.ident().path
		l.refuse.securityRefusal(c, refusalForeignKey, reason, "kid", k.JWK.Kid, "id", string(h.ID))
		l.refuseOrNackSys(c, h, codeForeignKey, reason)
		return false
	}
	return true
}

// originOf maps the connection's attach origin to the profile's notion of origin.
func originOf(c peer) security.Origin {
	if c.ident().origin == "peer" {
		return security.OriginPeer
	}
	return security.OriginDownstream
}

func verifyCode(err error) string {
	if errors.Is(err, security.ErrUnsigned) {
		return codeSignatureRequired
	}
	return codeSignatureFailed
}

// verifyReason is the nack reason: short and stable for the cases a sender can act on.
func verifyReason(e *envelope.Envelope, err error) string {
	switch {
	case errors.Is(err, security.ErrUnsigned):
		return "signature required for " + e.FrameType()
	case errors.Is(err, security.ErrUnknownKey):
		kid := ""
		if sec, perr := security.ParseSec(e.Sec); perr == nil && sec != nil && sec.Sig != nil {
			kid = sec.Sig.Kid
		}
		return "unknown signing key " + kid
	case errors.Is(err, security.ErrSIDMismatch):
		return "signature verification failed: envelope sid does not match the signing key's owner"
	case errors.Is(err, security.ErrCertExpired):
		return "signature verification failed: signer certificate expired"
	}
	return "signature verification failed"
}

// refuse counts and logs a refused envelope and, when the sender waits for an answer (id,
// replyTo and corrId present), nacks it. The nack goes only back down the connection the
// envelope came in on: an unauthenticated envelope must not make the sentinel send to a third
// party named in its replyTo.
func (l *secLayer) refuseEnvelope(c peer, h *envelope.Header, code, reason string) {
	c.logger().Warn("envelope refused", "frame", string(h.FrameType), "id", string(h.ID),
		"sid", string(h.SID), "code", code, "reason", reason)
	if len(h.ID) == 0 || len(h.ReplyTo) == 0 || len(h.CorrID) == 0 || !l.replyReaches(c, h.ReplyTo) {
		l.metrics.dropped.WithLabelValues(code).Inc()
		return
	}
	l.metrics.nacks.WithLabelValues(code).Inc()
	l.refuse.nackPending(pendingReq{id: string(h.ID), traceID: string(h.TraceID), replyTo: string(h.ReplyTo),
		to: string(h.To), frameType: string(h.FrameType), corrID: string(h.CorrID), cid: string(h.FrameCID)}, code, reason)
}

// refuseOrNackSys is refuse for a security refusal: when the envelope names no reply address
// the sentinel may use, the nack goes to the sender's own __sys__ inbox, so that even a
// fire-and-forget envelope hears its refusal reason.
func (l *secLayer) refuseOrNackSys(c peer, h *envelope.Header, code, reason string) {
	if len(h.ID) == 0 || len(h.ReplyTo) == 0 || len(h.CorrID) == 0 || !l.replyReaches(c, h.ReplyTo) {
		l.refuse.nackSys(c, h, code, reason) // the caller's securityRefusal logged it (throttled)
		return
	}
	l.refuseEnvelope(c, h, code, reason)
}

// replyReaches reports whether replyTo is a physical address at or under c's path: the only
// kind of reply address a node uses for itself (__rpc__…@<own path>, __sys__@<own path>).
func (l *secLayer) replyReaches(c peer, replyTo []byte) bool {
	at := bytes.LastIndexByte(replyTo, '@')
	if at < 0 {
		return false
	}
	return envelope.UnderPath(string(replyTo[at+1:]), c.ident().path)
}
