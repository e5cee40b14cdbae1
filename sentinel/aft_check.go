package sentinel

import (
	"crypto/ed25519"
	"errors"
	"sync"
	"time"

	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/security/aft"
)

// Wire codes of the session-stickiness refusals (DeliveryAck code sent to the sender's
// __sys__ inbox). Reasons are the refusal* labels of fame_security_refusals_total.
const (
	codeAFTForeignSID     = "AFT_FOREIGN_SID"
	codeAFTForeignKid     = "AFT_FOREIGN_KID"
	codeAFTForeignSession = "AFT_FOREIGN_SESSION"
	codeChannelTakeover   = "CHANNEL_TAKEOVER"
	codeAFTInvalid        = "AFT_INVALID"
	codeKeyAnnounce       = "KEY_ANNOUNCE_REFUSED"

	refusalAFTInvalid             = "aft_invalid"
	refusalKeyAnnounceForeignPath = "key_announce_foreign_path"
	refusalKeyAnnounceUnserved    = "key_announce_unserved"
	refusalKeyAnnounceInvalid     = "key_announce_invalid"
)

// aftRefusal is the confirm callback's verdict on a verified AFT: the binding it asks for is
// not src's to make.
type aftRefusal struct {
	reason, code, detail string
	attrs                []any
	quiet                bool // not an attack: counted (reason) and logged at debug, no nack
}

func (e *aftRefusal) Error() string { return e.code + ": " + e.detail }

// errAFTOtherPool: the session binding names a replica that shares no pool with the sender;
// the client uses several pools and its sid was last placed in another one. Nothing to take.
var errAFTOtherPool = errors.New("session bound in a pool the sender is not a member of")

// sidOwnedBy reports whether sid is the sid of c or of a path c registered keys for (its
// subtree): the envelope sid an AFT's sid must equal. The set is kept per connection at key
// registration (secLayer.rebuildSIDs), so the check takes no global lock and hashes nothing.
func (l *secLayer) sidOwnedBy(c peer, sid string) bool {
	if sid == c.ident().sid {
		return true
	}
	if l == nil {
		return false
	}
	v, ok := l.sids.Load(c)
	if !ok {
		return false
	}
	_, ok = (*v.(*map[string]struct{}))[sid]
	return ok
}

// rebuildSIDs recomputes the sids of the paths c owns keys for. Caller holds l.mu.
func (l *secLayer) rebuildSIDs(c peer) {
	set := make(map[string]struct{}, len(l.paths[c]))
	for _, p := range l.paths[c] {
		if l.owner[p] == c {
			set[envelope.SecureDigest(p)] = struct{}{}
		}
	}
	if len(set) == 0 {
		l.sids.Delete(c)
		return
	}
	l.sids.Store(c, &set)
}

// aftKeyFor resolves an AFT kid for a token that src carries: only a key registered under
// src's path (or subtree) counts. foreign is set when the kid exists but belongs to another
// node, so that the refusal can say so.
func (l *secLayer) aftKeyFor(src peer, foreign *bool) aft.KeyLookup {
	return func(kid string) (ed25519.PublicKey, bool) {
		if l == nil {
			return nil, false
		}
		k, ok := l.keys.Get(kid)
		if !ok || k.Sig == nil {
			return nil, false
		}
		if !keyBelongs(src, k.PhysicalPath) {
			*foreign = true
			return nil, false
		}
		return k.Sig, true
	}
}

// learnAFT applies an AFT that src carries in meta.set.aft. It re-pins a session only when
// the envelope's sid is src's (or its subtree's), the token's kid is src's key, and the
// session's SecureOpen or first request was routed to src: its session binding, or else the
// binding of the channel this SecureAccept answers, names src. A replica cannot pull another
// replica's sessions, nor pre-pin sessions it was never given. Every decision is made on the
// verified claims, the same parse that binds (LearnAFTConfirmed), so that no second reading
// of the token can disagree with the one that pins. A refusal is nacked to src's __sys__ inbox.
func (r *stickyRouter) learnAFT(src peer, h *envelope.Header, tok string) {
	sid := string(h.SID)
	self := src.ident()
	if !r.sec.sidOwnedBy(src, sid) {
		r.refuseAFT(src, h, &aftRefusal{reason: refusalAFTForeignSID, code: codeAFTForeignSID,
			detail: "AFT on an envelope whose sid is not the sender's", attrs: []any{"sid", sid}})
		return
	}
	confirm := func(c aft.Claims) error {
		if owner, ok := r.sec.keyOwner(c.KID); ok && !keyBelongs(src, owner) {
			return &aftRefusal{reason: refusalAFTForeignKid, code: codeAFTForeignKid,
				detail: "AFT signed with another node's key", attrs: []any{"kid", c.KID, "key_path", owner}}
		}
		if c.ClientSID == "" {
			return nil
		}
		if string(h.FrameType) == envelope.TypeSecureAccept && len(h.FrameCID) > 0 {
			// The channel this accept answers was opened towards one replica: that decides.
			if bound, ok := r.table.LookupChannel(string(h.FrameCID)); ok {
				if bound != self.systemID {
					return &aftRefusal{reason: refusalAFTForeignSession, code: codeAFTForeignSession,
						detail: "AFT for a channel that was opened towards another replica",
						attrs:  []any{"client_sid", c.ClientSID, "cid", string(h.FrameCID), "channel_replica", bound}}
				}
				return nil
			}
		}
		bound, ok := r.table.Lookup(c.ClientSID)
		if !ok {
			// Nothing was routed for this session through a pool (or its binding expired):
			// there is nothing to confirm, and a pin now would let a replica pre-claim sessions
			// it was never given. Counted, but logged at debug: a replica that is alone in its
			// pool and tags plain replies does this in normal operation.
			return &aftRefusal{reason: refusalAFTUnroutedSession, quiet: true,
				detail: "AFT ignored: session not routed to this replica", attrs: []any{"client_sid", c.ClientSID}}
		}
		if bound == self.systemID {
			return nil
		}
		if !r.routes.sharePool(src, bound) {
			// Session bindings are per client sid: a client that uses two pools has its sid
			// bound in the one it called last. The sender cannot take what its pool never
			// held, and this is the normal case of a legitimate replica: neither bound nor
			// refused.
			return errAFTOtherPool
		}
		return &aftRefusal{reason: refusalAFTForeignSession, code: codeAFTForeignSession,
			detail: "AFT for a session that was routed to another replica",
			attrs:  []any{"client_sid", c.ClientSID, "session_replica", bound}}
	}
	foreign := false
	err := r.table.LearnAFTConfirmed(tok, sid, self.systemID, r.sec.aftKeyFor(src, &foreign), time.Now(), confirm)
	if err == nil {
		return
	}
	var ar *aftRefusal
	switch {
	case errors.As(err, &ar) && ar.quiet:
		r.metrics.refusals.WithLabelValues(ar.reason).Inc()
		src.logger().Debug(ar.detail, append([]any{"reason", ar.reason, "path", self.path, "remote", self.remote}, ar.attrs...)...)
	case errors.As(err, &ar):
		r.refuseAFT(src, h, ar)
	case errors.Is(err, errAFTOtherPool):
		src.logger().Debug("AFT not applied: the session is bound in another pool", "path", self.path)
	case foreign:
		r.refuseAFT(src, h, &aftRefusal{reason: refusalAFTForeignKid, code: codeAFTForeignKid,
			detail: "AFT signed with another node's key", attrs: []any{"err", err.Error()}})
	case aft.ReasonOf(err) == aft.ReasonSIDOnly:
		// The operator turned AFTs off (level sid-only); replicas may still send them.
		src.logger().Debug("AFT ignored at level sid-only", "path", self.path)
	default:
		// Malformed (duplicate members included), expired, wrong algorithm, sid or signature.
		r.refuseAFT(src, h, &aftRefusal{reason: refusalAFTInvalid, code: codeAFTInvalid,
			detail: "AFT refused: " + string(aft.ReasonOf(err)), attrs: []any{"err", err.Error()}})
	}
}

// refuseAFT counts and logs a refused AFT or channel claim and nacks it to src's __sys__ inbox.
func (r *stickyRouter) refuseAFT(src peer, h *envelope.Header, ar *aftRefusal) {
	r.refuse.securityRefusal(src, ar.reason, ar.detail, ar.attrs...)
	r.refuse.nackSys(src, h, ar.code, ar.detail)
}

// nackSys tells src why an envelope of its was refused when that envelope names no reply
// address the sentinel may use: a DeliveryAck{ok:false, code, refId} to the sender's own
// system inbox (__sys__@<path>), where nodes receive the sentinel's acks.
func (s *Sentinel) nackSys(src peer, h *envelope.Header, code, reason string) {
	s.metrics.nacks.WithLabelValues(code).Inc()
	e, err := envelope.New(&envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: code, Reason: reason, RefID: string(h.ID)}})
	if err != nil {
		return
	}
	// No corrId: an AFT refusal does not stop the envelope itself, and a corrId could fail a
	// call the sender is waiting on; refId names exactly what was refused.
	e.SID, e.TraceID, e.To = s.sid, string(h.TraceID), "__sys__@"+src.ident().path
	s.sec.signOwn(e)
	src.sendOwn(e, envelope.FlowReset)
}

// keyOwner returns the path a signing kid is registered under.
func (l *secLayer) keyOwner(kid string) (string, bool) {
	if l == nil || kid == "" {
		return "", false
	}
	k, ok := l.keys.Get(kid)
	if !ok {
		return "", false
	}
	return k.PhysicalPath, true
}

// channelTakeover reports whether binding channel cid to src would move a channel that is
// bound to another replica (a SecureAccept for someone else's channel).
func (r *stickyRouter) channelTakeover(src peer, cid string) (string, bool) {
	bound, ok := r.table.LookupChannel(cid)
	return bound, ok && bound != src.ident().systemID
}

// sharePool reports whether c and the connection of system id other are members of a common
// pool. Only asked on the rare path of an AFT for a session bound elsewhere.
func (t *routeTable) sharePool(c peer, other string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, bySuffix := range t.pools {
		for _, p := range bySuffix {
			in, them := false, false
			for _, m := range p.members {
				in = in || m == c
				them = them || m.ident().systemID == other
			}
			if in && them {
				return true
			}
		}
	}
	return false
}

// refusalLogger lets through at most one security-refusal warning per second for each peer
// and reason, and counts what it held back, so that a hostile peer cannot flood the log; the
// counter (fame_security_refusals_total) still sees every refusal.
type refusalLogger struct {
	mu sync.Mutex
	m  map[refusalLogKey]*refusalLogState
}

type refusalLogKey struct {
	c      peer
	reason string
}

type refusalLogState struct {
	last       time.Time
	suppressed int
}

// maxRefusalLogKeys bounds the throttle's memory; past it the table starts afresh (at worst
// one more line per peer and reason).
const maxRefusalLogKeys = 4096

// allow reports whether a warning for (c, reason) may be logged now and how many were
// suppressed since the last one.
func (l *refusalLogger) allow(c peer, reason string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxRefusalLogKeys {
		l.m = make(map[refusalLogKey]*refusalLogState)
	}
	k := refusalLogKey{c, reason}
	st := l.m[k]
	if st == nil {
		l.m[k] = &refusalLogState{last: now}
		return 0, true
	}
	if now.Sub(st.last) < time.Second {
		st.suppressed++
		return 0, false
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return n, true
}
