package sentinel

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/stickiness"
)

// Identity-bound routing: an address has one owner, a system id one live connection, a key one
// path, a sticky session one replica. This file holds the checks; each refusal is said on the
// wire (negative ack with a code, or a close with a reason), logged with the peer and counted
// in fame_security_refusals_total{reason}.

// Wire codes of the refusals (Ack.code).
const (
	codeBindConflict    = "BIND_CONFLICT"
	codeSystemIDInUse   = "SYSTEM_ID_IN_USE"
	codeInvalidSystemID = "INVALID_SYSTEM_ID"
	codeForeignKey      = "FOREIGN_SIGNING_KEY"
)

// Label values of fame_security_refusals_total.
const (
	refusalBindConflict          = "bind_conflict"
	refusalBindUnauthorized      = "bind_unauthorized"
	refusalAdvertiseUnauthorized = "advertise_unauthorized"
	refusalSystemIDInUse         = "system_id_in_use"
	refusalSystemIDInvalid       = "system_id_invalid"
	refusalForeignKey            = "foreign_key"
	refusalAFTForeignKid         = "aft_foreign_kid"
	refusalAFTForeignSID         = "aft_foreign_sid"
	refusalAFTForeignSession     = "aft_foreign_session"
	refusalAFTUnroutedSession    = "aft_unrouted_session"
	refusalChannelTakeover       = "channel_takeover"
)

// ownerProbeTimeout is how long the live holder of a system id has to answer a ping before a
// newcomer that cannot prove ownership takes the id over: a crashed node reconnecting gets its
// id back within this time, a second process started with the same id by mistake is refused.
const ownerProbeTimeout = 3 * time.Second

// maxSystemIDLen bounds a system id; ids become path segments and log fields.
const maxSystemIDLen = 256

func newRefusalCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_security_refusals_total",
		Help: "Identity-bound routing refusals (address, system id, key and session ownership), by reason."}, []string{"reason"})
}

// securityRefusal counts a refusal and logs it naming the peer. The wire answer is the caller's.
func (s *Sentinel) securityRefusal(c *conn, reason, detail string, attrs ...any) {
	s.metrics.refusals.WithLabelValues(reason).Inc()
	id := c.systemID
	if id == "" {
		id = c.urlID
	}
	args := append([]any{"reason", reason, "system_id", id, "path", c.path, "remote", c.remote, "detail", detail}, attrs...)
	s.log.Warn("security refusal", args...)
}

// attachRefusal is an attach refusal with a wire code for the negative NodeAttachAck.
type attachRefusal struct {
	code, reason string
}

func (e *attachRefusal) Error() string { return errAttach.Error() + ": " + e.code + ": " + e.reason }
func (e *attachRefusal) Unwrap() error { return errAttach }

// attachCode returns the wire code of an attach refusal ("" when it has none).
func attachCode(err error) string {
	var ar *attachRefusal
	if errors.As(err, &ar) {
		return ar.code
	}
	return ""
}

// validSystemID refuses ids that are not a single clean path segment. The id is already
// URL-unescaped (the mux unescapes path values), so %2F arrives here as '/'; a '%' left over
// means double escaping, which is refused as well rather than decoded again.
func validSystemID(id string) error {
	switch {
	case id == "":
		return errors.New("empty system id")
	case len(id) > maxSystemIDLen:
		return fmt.Errorf("system id is %d bytes (max %d)", len(id), maxSystemIDLen)
	case id == "." || id == "..":
		return fmt.Errorf("system id %q is a relative path segment", id)
	}
	for _, r := range id {
		switch {
		case r == '/' || r == '\\' || r == '%' || r == '@' || r == '?' || r == '#':
			return fmt.Errorf("system id %q contains %q (path separators and escapes are not allowed)", id, r)
		case r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.IsSpace(r):
			return fmt.Errorf("system id %q contains a control, space or invalid character", id)
		}
	}
	return nil
}

// ownState serialises ownership decisions that check the route table and then change it.
type ownState struct {
	bindMu   sync.Mutex          // held across conflict check and bind
	mu       sync.Mutex          // guards claiming
	claiming map[string]struct{} // system ids whose take-over is being decided (probe running)
}

// claimSystemID decides whether c may take system id c.systemID when a live connection holds
// it: yes when the NodeAttach proves c is the owner (signed by the key registered for the
// path, or in strict-overlay by a certified key for the same SPIFFE ID), or when the holder
// fails a liveness probe (it is then evicted). A shared token subject is no proof.
func (s *Sentinel) claimSystemID(c *conn, e *envelope.Envelope, na *envelope.NodeAttach) (release func(), err error) {
	// The claim is held until the caller has entered c in the route table (release is
	// idempotent: called there, and deferred for the error paths), so that two concurrent
	// attaches for one id cannot both find it free.
	o := &s.routes.own
	o.mu.Lock()
	if _, busy := o.claiming[c.systemID]; busy {
		o.mu.Unlock()
		return nil, s.refuseClaim(c, nil, "another attach for it is being decided")
	}
	if o.claiming == nil {
		o.claiming = map[string]struct{}{}
	}
	o.claiming[c.systemID] = struct{}{}
	o.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			o.mu.Lock()
			delete(o.claiming, c.systemID)
			o.mu.Unlock()
		})
	}
	if err := s.takeSystemID(c, e, na); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

func (s *Sentinel) takeSystemID(c *conn, e *envelope.Envelope, na *envelope.NodeAttach) error {
	old := s.routes.child([]byte(c.systemID))
	if old == nil || old.closed() {
		return nil
	}
	if how := s.sec.provesOwner(c, e, na); how != "" {
		c.log.Info("system id re-attached by its owner; replacing the previous connection", "proof", how, "old_remote", old.remote)
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, ownerProbeTimeout)
	err := old.ws.Ping(ctx)
	cancel()
	if err == nil && !old.closed() {
		return s.refuseClaim(c, old, "its connection from "+old.remote+" answered a liveness probe")
	}
	c.log.Warn("system id holder failed the liveness probe; evicting it for the new attach",
		"old_remote", old.remote, "probe", ownerProbeTimeout, "err", err)
	old.close(websocket.StatusGoingAway, "liveness: no pong within "+ownerProbeTimeout.String()+"; system id taken by a new attach")
	return nil
}

func (s *Sentinel) refuseClaim(c *conn, old *conn, why string) error {
	reason := fmt.Sprintf("system id %q is in use (%s) and this attach does not prove ownership", c.systemID, why)
	holder := ""
	if old != nil {
		holder = old.remote
	}
	s.securityRefusal(c, refusalSystemIDInUse, reason, "holder_remote", holder)
	return &attachRefusal{code: codeSystemIDInUse, reason: reason}
}

// provesOwner reports how the NodeAttach e proves that c owns its path ("" when it does not):
// a signature by the signing key registered for the path (the same process reconnecting), or
// under strict-overlay a signature by a key presented in this attach whose certificate is for
// the same SPIFFE ID (spiffe://…/nodes/<sid of the path>). Presenting public keys proves
// nothing; only a signature does.
func (l *secLayer) provesOwner(c *conn, e *envelope.Envelope, na *envelope.NodeAttach) string {
	if l == nil || len(e.Sec) == 0 || e.SID != c.sid {
		return ""
	}
	if k, err := l.keys.Verify(e, false); err == nil && k.PhysicalPath == c.path {
		return "signed by the path's registered key"
	}
	if l.ksOpts.Trust == nil {
		return ""
	}
	now := time.Now()
	if l.ksOpts.Now != nil {
		now = l.ksOpts.Now()
	}
	for _, raw := range na.Keys {
		j, err := security.ParseJWK(raw)
		if err != nil || j.Use != "sig" || len(j.X5C) == 0 {
			continue
		}
		id, err := security.VerifyX5C(j.X5C, l.ksOpts.Trust, c.sid, now)
		if err != nil {
			continue
		}
		if security.Verify(e, id.PublicKey) == nil {
			return "signed by a certified key for " + id.SPIFFEID.String()
		}
	}
	return ""
}

// bindOwned binds a for c unless that would shadow or take over an address another node owns;
// it returns why it refused ("" when bound). Check and bind run under one lock so that two
// concurrent binders cannot both pass the check.
func (s *Sentinel) bindOwned(c *conn, a envelope.Address) string {
	t := s.routes
	t.own.bindMu.Lock()
	defer t.own.bindMu.Unlock()
	if why := t.conflict(c, a); why != "" {
		return why
	}
	t.bind(c, a)
	return ""
}

// conflict reports whether binding a would take an address owned by another live node: an
// exact address bound by someone else, or an exact address inside the domain of a pool that
// has other members (the exact route would win over the pool and divert its traffic). Joining
// a pool is not a conflict: the pool is the owner, and mayBind has checked the grant.
func (t *routeTable) conflict(c *conn, a envelope.Address) string {
	if a.Host == "" {
		return "" // physical: mayBind allows only c's own subtree
	}
	if strings.HasPrefix(a.Host, "*.") && a.Path == "" {
		return ""
	}
	key := a.String()
	t.mu.RLock()
	defer t.mu.RUnlock()
	if o := t.exact[key]; o != nil && o != c && !o.closed() {
		return "address " + key + " is bound by " + o.systemID
	}
	bySuffix := t.pools[a.Participant]
	for h := a.Host; h != ""; {
		if p := bySuffix[h]; p != nil {
			for _, m := range p.members {
				if m != c && !m.closed() {
					return "address " + key + " lies in pool " + p.key + " served by " + m.systemID
				}
			}
		}
		dot := strings.IndexByte(h, '.')
		if dot < 0 {
			break
		}
		h = h[dot+1:]
	}
	return ""
}

// credentialAllows checks a logical host against what c's certificate grants (the logicals
// extension of its SVID under strict-overlay). Token and ticket grants are checked by mayBind
// through the Principal.
func (l *secLayer) credentialAllows(c *conn, host string) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	id := l.idents[c]
	l.mu.Unlock()
	if id == nil || len(id.Logicals) == 0 {
		return true
	}
	return envelope.LogicalAllowed(id.Logicals, host)
}

// keyBelongs reports whether a key registered under keyPath may sign what c sends: it must be
// c's own path or lie in c's subtree.
func keyBelongs(c *conn, keyPath string) bool { return envelope.UnderPath(keyPath, c.path) }

// sidOwnedBy reports whether sid is the sid of c or of a path c registered keys for (its
// subtree): the envelope sid an AFT's sid must equal.
func (l *secLayer) sidOwnedBy(c *conn, sid string) bool {
	if sid == c.sid {
		return true
	}
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.paths[c] {
		if l.owner[p] == c && envelope.SecureDigest(p) == sid {
			return true
		}
	}
	return false
}

// aftKeyFor resolves an AFT kid for a token that src carries: only a key registered under
// src's path (or subtree) counts. foreign is set when the kid exists but belongs to another
// node, so that the refusal can say so.
func (l *secLayer) aftKeyFor(src *conn, foreign *bool) stickiness.KeyLookup {
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
// replica's sessions, nor pre-pin sessions it was never given.
func (r *stickyRouter) learnAFT(src *conn, h *envelope.Header, tok string) {
	s := r.s
	sid := string(h.SID)
	if !s.sec.sidOwnedBy(src, sid) {
		s.securityRefusal(src, refusalAFTForeignSID, "AFT on an envelope whose sid is not the sender's", "sid", sid)
		return
	}
	kid, clientSID := peekAFT(tok)
	if owner, ok := s.sec.keyOwner(kid); ok && !keyBelongs(src, owner) {
		s.securityRefusal(src, refusalAFTForeignKid, "AFT signed with another node's key", "kid", kid, "key_path", owner)
		return
	}
	if clientSID != "" {
		bound, ok := r.table.Lookup(clientSID)
		if !ok && string(h.FrameType) == envelope.TypeSecureAccept && len(h.FrameCID) > 0 {
			bound, ok = r.table.LookupChannel(string(h.FrameCID))
		}
		if !ok {
			// Nothing was routed for this session through a pool (or its binding expired):
			// there is nothing to confirm, and a pin now would let a replica pre-claim sessions
			// it was never given. Counted, but logged at debug: a replica that is alone in its
			// pool and tags plain replies does this in normal operation.
			s.metrics.refusals.WithLabelValues(refusalAFTUnroutedSession).Inc()
			src.log.Debug("AFT ignored: session not routed to this replica", "reason", refusalAFTUnroutedSession,
				"path", src.path, "remote", src.remote, "client_sid", clientSID)
			return
		}
		if bound != src.systemID {
			s.securityRefusal(src, refusalAFTForeignSession, "AFT for a session that was routed to another replica",
				"client_sid", clientSID, "session_replica", bound)
			return
		}
	}
	foreign := false
	if err := r.table.LearnAFT(tok, sid, src.systemID, s.sec.aftKeyFor(src, &foreign), time.Now()); err != nil {
		if foreign {
			s.securityRefusal(src, refusalAFTForeignKid, "AFT signed with another node's key", "err", err.Error())
			return
		}
		src.log.Warn("AFT refused", "reason", string(stickiness.ReasonOf(err)), "err", err)
	}
}

// peekAFT reads the header kid and client_sid of an AFT without verifying it; LearnAFT
// verifies the token before it binds anything, so the peek only decides which owner and
// which binding to compare with.
func peekAFT(tok string) (kid, clientSID string) {
	parts := strings.SplitN(tok, ".", 3)
	if len(parts) != 3 || len(tok) > 4096 {
		return "", ""
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil && json.Unmarshal(b, &hdr) == nil {
		kid = hdr.Kid
	}
	var c struct {
		ClientSID *string `json:"client_sid"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &c) == nil && c.ClientSID != nil {
		clientSID = *c.ClientSID
	}
	return kid, clientSID
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
func (r *stickyRouter) channelTakeover(src *conn, cid string) (string, bool) {
	bound, ok := r.table.LookupChannel(cid)
	return bound, ok && bound != src.systemID
}
