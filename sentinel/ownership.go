package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/envelope"
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

func newRefusalCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_security_refusals_total",
		Help: "Identity-bound routing refusals (address, system id, key and session ownership), by reason."}, []string{"reason"})
}

// securityRefusal counts a refusal and logs it naming the peer. The wire answer is the caller's.
func (s *Sentinel) securityRefusal(c peer, reason, detail string, attrs ...any) {
	s.metrics.refusals.WithLabelValues(reason).Inc()
	who := c.ident()
	id := who.systemID
	if id == "" {
		id = who.urlID
	}
	s.metrics.recent.add(reason, id, who.remote, detail)
	if suppressed, ok := s.refusalLog.allow(c, reason, time.Now()); ok {
		args := append([]any{"reason", reason, "system_id", id, "path", who.path, "remote", who.remote, "detail", detail,
			"suppressed_since_last", suppressed}, attrs...)
		s.log.Warn("security refusal", args...)
	}
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

// validSystemID refuses ids that are not a single clean path segment (envelope.ValidSystemID,
// the rule the welcome service applies too). The id is already URL-unescaped (the mux
// unescapes path values), so %2F arrives here as '/'; a '%' left over means double escaping,
// which is refused as well rather than decoded again.
func validSystemID(id string) error { return envelope.ValidSystemID(id) }

// ownState serialises ownership decisions that check the route table and then change it.
type ownState struct {
	bindMu   sync.Mutex               // held across conflict check and bind
	mu       sync.Mutex               // guards claiming and alive
	claiming map[string]chan struct{} // system id -> closed when its take-over decision is done
	alive    map[string]time.Time     // system id -> when its holder last proved alive to a probe
}

// claimWait bounds how long a claim waits for another claim of the same id to be decided
// (one probe, plus slack) before it is refused.
const claimWait = ownerProbeTimeout + time.Second

// aliveFor is how long a holder that proved alive is not probed again: further claims for
// its id in that time are refused at once. A flood of claims thus costs the holder one probe
// per aliveFor, not one per claim.
const aliveFor = time.Second

// claimSystemID decides whether c may take system id c.systemID when a live connection holds
// it: yes when the NodeAttach proves c is the owner (signed by the key registered for the
// path: the same process), or when the holder fails a liveness probe (it is then evicted). A
// shared token subject is no proof, and neither is a certificate for the same SPIFFE ID: any
// holder of a shared replica credential can obtain one.
//
// Claims for one id are serialised, not refused: a second claim waits (up to claimWait) for
// the first to be decided and is then decided itself, so an attacker's claim against a dead
// holder delays a crashed node's reconnect by at most one probe instead of refusing it.
func (s *Sentinel) claimSystemID(c *conn, e *envelope.Envelope, na *envelope.NodeAttach) (release func(), err error) {
	// The claim is held until the caller has entered c in the route table (release is
	// idempotent: called there, and deferred for the error paths), so that two concurrent
	// attaches for one id cannot both find it free.
	o := &s.routes.own
	deadline := time.NewTimer(claimWait)
	defer deadline.Stop()
	var done chan struct{}
	for {
		o.mu.Lock()
		busy, isBusy := o.claiming[c.systemID]
		if !isBusy {
			if o.claiming == nil {
				o.claiming = map[string]chan struct{}{}
			}
			done = make(chan struct{})
			o.claiming[c.systemID] = done
			o.mu.Unlock()
			break
		}
		o.mu.Unlock()
		select {
		case <-busy:
		case <-deadline.C:
			return nil, s.refuseClaim(c, nil, "other attaches for it are being decided")
		case <-s.ctx.Done():
			return nil, s.refuseClaim(c, nil, "the sentinel is shutting down")
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			o.mu.Lock()
			delete(o.claiming, c.systemID)
			o.mu.Unlock()
			close(done)
		})
	}
	if err := s.takeSystemID(c, e, na); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

func (s *Sentinel) takeSystemID(c *conn, e *envelope.Envelope, na *envelope.NodeAttach) error {
	old := asConn(s.routes.child([]byte(c.systemID)))
	if old == nil || old.closed() {
		return nil
	}
	if how := s.sec.provesOwner(c, e); how != "" {
		c.log.Info("system id re-attached by its owner; replacing the previous connection", "proof", how, "old_remote", old.remote)
		return nil
	}
	o := &s.routes.own
	o.mu.Lock()
	seen, recent := o.alive[c.systemID]
	recent = recent && time.Since(seen) < aliveFor
	o.mu.Unlock()
	if recent {
		return s.refuseClaim(c, old, "its holder answered a liveness probe less than "+aliveFor.String()+" ago")
	}
	// Any frame the holder sends during the probe counts as alive, not only the pong: a
	// flooded holder's pong may queue behind its own traffic past the timeout.
	rx := old.rx.Load()
	ctx, cancel := context.WithTimeout(s.ctx, ownerProbeTimeout)
	err := old.ws.Ping(ctx)
	cancel()
	if (err == nil || old.rx.Load() != rx) && !old.closed() {
		o.mu.Lock()
		if o.alive == nil {
			o.alive = map[string]time.Time{}
		}
		for id, t := range o.alive { // bounded by the ids claimed in the last aliveFor
			if time.Since(t) >= aliveFor {
				delete(o.alive, id)
			}
		}
		o.alive[c.systemID] = time.Now()
		o.mu.Unlock()
		return s.refuseClaim(c, old, "its holder answered a liveness probe")
	}
	c.log.Warn("system id holder failed the liveness probe; evicting it for the new attach",
		"old_remote", old.remote, "probe", ownerProbeTimeout, "err", err)
	old.close(websocket.StatusGoingAway, "liveness: no pong within "+ownerProbeTimeout.String()+"; system id taken by a new attach")
	return nil
}

// refuseClaim refuses c's claim. The holder's address is logged, never sent: the newcomer is
// not authenticated as anyone the holder trusts.
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
// only a signature by the signing key registered for the path, i.e. the same process
// reconnecting. A certificate for the same SPIFFE ID is no proof (review finding 5): under a
// shared OAuth2 replica credential anyone with the credential can obtain one for a live
// replica's id. Such a newcomer gets the id only when the holder fails the liveness probe.
func (l *secLayer) provesOwner(c *conn, e *envelope.Envelope) string {
	if l == nil || len(e.Sec) == 0 || e.SID != c.sid {
		return ""
	}
	if k, err := l.keys.Verify(e, false); err == nil && k.PhysicalPath == c.path {
		return "signed by the path's registered key"
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
// has other members (the exact route would win over the pool and divert its traffic), or a
// pool inside a wider live pool of other nodes (poolConflict). Joining a pool is not a
// conflict: the pool is the owner, and mayBind has checked the grant.
func (t *routeTable) conflict(c peer, a envelope.Address) string {
	if a.Host == "" {
		return "" // physical: mayBind allows only c's own subtree
	}
	key := a.String()
	t.mu.RLock()
	defer t.mu.RUnlock()
	if suffix, ok := strings.CutPrefix(a.Host, "*."); ok && a.Path == "" {
		return t.poolConflict(c, a.Participant, suffix, key)
	}
	if o := t.exact[key]; o != nil && o != c && !o.closed() {
		return "address " + key + " is bound by " + o.ident().systemID
	}
	bySuffix := t.pools[a.Participant]
	for h := a.Host; h != ""; {
		if p := bySuffix[h]; p != nil {
			for _, m := range p.members {
				if m != c && !m.closed() {
					return "address " + key + " lies in pool " + p.key + " served by " + m.ident().systemID
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

// advertiseOwned reports whether c owns address a for a capability advertise: a physical
// address under c's path (mayBind has checked it), an exact address c has bound, or, for a
// member of pool participant@*.S, participant@S or participant@<c's system id>.S (the
// reference TS agent and our SDK advertise the latter). It returns the wire code and why
// when c does not: BIND_CONFLICT when another live node has bound the address, else
// UNAUTHORIZED. Capability routing delivers to the advertiser, so advertising an address one
// does not own would divert its callers.
func (t *routeTable) advertiseOwned(c peer, a envelope.Address) (code, why string) {
	if a.Host == "" {
		return "", ""
	}
	key := a.String()
	t.mu.RLock()
	defer t.mu.RUnlock()
	o := t.exact[key]
	if o == c {
		return "", ""
	}
	for suffix, p := range t.pools[a.Participant] {
		if a.Path != "" || a.Host != suffix && a.Host != c.ident().systemID+"."+suffix {
			continue
		}
		for _, m := range p.members {
			if m == c {
				return "", ""
			}
		}
	}
	if o != nil && !o.closed() {
		return codeBindConflict, "capabilities for " + key + ": the address is bound by " + o.ident().systemID
	}
	return envelope.CodeUnauthorized, "capabilities for " + key + ": the address is not one this node has bound " +
		"(its exact binding, participant@S or participant@<system id>.S of a pool *.S it is a member of, or under its path)"
}

// poolConflict reports whether joining pool participant@*.suffix would shadow a wider live
// pool: lookupPool picks the most specific suffix, so participant@*.eu.fame.fabric bound
// while participant@*.fame.fabric has other live members would divert the wider pool's
// traffic for eu.fame.fabric. Joining the same pool, or a wider one, diverts nothing. An
// exact address of another node inside the pool's domain does not refuse the join: that node
// bound first and keeps its address; the pool never had its traffic. Called with t.mu held.
func (t *routeTable) poolConflict(c peer, participant, suffix, key string) string {
	bySuffix := t.pools[participant]
	for h := suffix; ; {
		dot := strings.IndexByte(h, '.')
		if dot < 0 {
			return ""
		}
		h = h[dot+1:]
		if p := bySuffix[h]; p != nil {
			for _, m := range p.members {
				if m != c && !m.closed() {
					return "pool " + key + " would shadow pool " + p.key + " served by " + m.ident().systemID
				}
			}
		}
	}
}

// credentialAllows checks a logical host against what c's certificate grants (the logicals
// extension of its SVID under strict-overlay). Token and ticket grants are checked by mayBind
// through the Principal.
func (l *secLayer) credentialAllows(c peer, host string) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	id := l.idents[c]
	l.mu.Unlock()
	if id == nil {
		return true // no certificate for this connection (not strict-overlay)
	}
	// Fail closed: a certificate without logicals grants no logical binds (physical binds
	// under the node's own path never reach here).
	return len(id.Logicals) > 0 && envelope.LogicalAllowed(id.Logicals, host)
}

// keyBelongs reports whether a key registered under keyPath may sign what c sends: it must be
// c's own path or lie in c's subtree.
func keyBelongs(c peer, keyPath string) bool { return envelope.UnderPath(keyPath, c.ident().path) }
