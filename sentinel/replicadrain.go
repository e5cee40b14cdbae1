package sentinel

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/envelope"
)

// Replica drain (POST /admin/replicas/{systemId}/drain, or the replica's own drain heartbeat,
// envelope/drain.go).
//
// A draining replica stays attached and keeps serving what is pinned to it and in flight,
// but the sticky router gives it no new session and does not pick it for an unpinned call
// while another member of its pool is not draining (a replica that is the last of its pool
// still serves its pool, and no session is pinned to it). Each client session pinned to it
// is moved as soon as it is idle, that is when no request of that client routed to the
// replica awaits its reply: right after the reply that leaves it idle (replyPassed), else at
// the next look of the drain loop (every replicaDrainTick). Moving a session is what losing
// the replica does (replicaGone), one session at a time: its binding is removed, the client
// gets a signed SecureClose for each channel it holds on the replica, and its next call is
// placed by the balancer on another replica, which pins it (logged as a re-pin "from" the
// drained replica "to" the new one). The channels of a moved session are unbound when their
// SecureClose is sent and remembered as closed: a request the client had already encrypted for
// one when the SecureClose crossed it is nacked CHANNEL_CLOSED. Forwarded, it would run on the
// draining replica while the client (which forgets the channel on the SecureClose, so the reply
// could not be read) re-sends it over a new channel: it would run twice.
//
// The drain ends ("drained", result idle) once no session is pinned to the replica, no
// request awaits its reply there and that held for replicaDrainLinger; or at the drain
// timeout (result timeout), when the sessions still busy are moved anyway (their calls in
// flight are still answered while the replica stays attached). The sentinel does not close
// the replica: it reports the state in the payload of every NodeHeartbeatAck it sends the
// replica (and pushes one, unasked, when an operator starts the drain and when it ends), and
// the Go SDK (Node.Drain) polls with drain heartbeats and returns on "drained", so its
// program exits: the replica detects the end, the sentinel never cuts it. A reference node ignores that payload: drained by the admin endpoint
// it stays attached and idle until its operator stops it. The drain state belongs to the
// connection: a replica that re-attaches is a fresh member.

const (
	// replicaDrainTick is how often the drain loop looks for idle sessions and for the end.
	replicaDrainTick = 20 * time.Millisecond
	// replicaDrainLinger is how long a replica must have been empty (nothing pinned, nothing
	// in flight) before it is reported drained: a request encrypted for a moved channel may
	// still be on its way.
	replicaDrainLinger = 200 * time.Millisecond

	// CodeDrainRefused is the nack code of a drain heartbeat that is refused: it names another
	// system id, it cannot be read, or its sender is a member of no pool.
	CodeDrainRefused = "DRAIN_REFUSED"
	// refusalDrainForeign counts such heartbeats in fame_security_refusals_total.
	refusalDrainForeign = "drain_foreign_system_id"
	// refusalDrainMalformed counts drain heartbeats that cannot be read.
	refusalDrainMalformed = "drain_malformed"
)

// replicaDrains holds the replicas being drained, by connection. It belongs to the sticky
// router, which consults it on the routing path only while n > 0.
type replicaDrains struct {
	timeout time.Duration
	n       atomic.Int32 // drains whose connection is attached (in progress or done): the hot-path gate
	mu      sync.RWMutex
	by      map[peer]*replicaDrain
	repin   map[string]string // client sid -> replica it was moved off, until its next pin (for the log line)
	wake    chan struct{}
	loop    sync.Once
	manual  bool // unit tests drive drainStep themselves: no loop
	// push sends p its drain status at once, unasked (the Sentinel: pushDrainStatus), when
	// an operator starts the drain and when it ends, so that an SDK replica need not wait for
	// its next heartbeat to learn either. nil: nothing is pushed.
	push func(p peer, st envelope.DrainStatus)
	// live reports whether a caller can still be answered (Sentinel.reachable): requests from
	// callers that left do not keep a session busy. nil: every caller counts.
	live func(replyTo string) bool

	started  *prometheus.CounterVec // fame_replica_drains_total{by}
	finished *prometheus.CounterVec // fame_replica_drains_finished_total{result}
	moved    *prometheus.CounterVec // fame_replica_sessions_moved_total{reason}
	refusals *prometheus.CounterVec // fame_replica_drain_refusals_total{reason}
	active   atomic.Int32           // drains in progress, fame_replica_draining
}

// replicaDrain is one replica's drain. Guarded by replicaDrains.mu.
type replicaDrain struct {
	p        peer
	id       string
	by       string // "admin" or "self"
	start    time.Time
	deadline time.Time
	lastOf   []string        // pools it was the only non-draining member of at the start
	moved    map[string]bool // client sids moved off
	closed   map[string]bool // channel ids the drain sent a SecureClose for
	nMoved   int
	quiet    time.Time // since when nothing is pinned and nothing in flight (zero: not quiet)
	done     bool
	result   string
}

func newReplicaDrains(timeout time.Duration, reg prometheus.Registerer) *replicaDrains {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d := &replicaDrains{timeout: timeout, by: map[peer]*replicaDrain{}, repin: map[string]string{},
		wake: make(chan struct{}, 1)}
	d.started = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_replica_drains_total",
		Help: "Replica drains started, by who asked: admin (POST /admin/replicas/{id}/drain) or self (the replica's drain heartbeat)."}, []string{"by"})
	d.finished = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_replica_drains_finished_total",
		Help: "Replica drains ended: idle (every session moved, nothing in flight), timeout (drain_timeout reached) or gone (the replica detached first)."}, []string{"result"})
	d.moved = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_replica_sessions_moved_total",
		Help: "Client sessions moved off a draining replica: idle (no call in flight), timeout (moved at drain_timeout) or replica_gone (purged when the draining replica detached)."}, []string{"reason"})
	d.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_replica_drain_refusals_total",
		Help: "Replica drain requests refused: unknown_system_id, not_replica (admin endpoint or heartbeat), already_draining (admin endpoint), attached_elsewhere (admin endpoint of a clustered sentinel the replica is not attached to), foreign_system_id (a drain heartbeat naming another node), malformed (a drain heartbeat that cannot be read)."}, []string{"reason"})
	for _, b := range []string{"admin", "self"} {
		d.started.WithLabelValues(b)
	}
	for _, r := range []string{"idle", "timeout", "gone"} {
		d.finished.WithLabelValues(r)
	}
	for _, r := range []string{"idle", "timeout", "replica_gone"} {
		d.moved.WithLabelValues(r)
	}
	for _, r := range []string{"unknown_system_id", "not_replica", "already_draining", "foreign_system_id", "attached_elsewhere"} {
		d.refusals.WithLabelValues(r)
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fame_replica_draining",
		Help: "Replicas being drained now (started and not yet drained)."}, func() float64 { return float64(d.active.Load()) })
	if reg != nil {
		reg.MustRegister(d.started, d.finished, d.moved, d.refusals, gauge)
	}
	return d
}

// on reports whether any attached replica is draining: one atomic load on the routing path.
func (d *replicaDrains) on() bool { return d != nil && d.n.Load() > 0 }

func (d *replicaDrains) draining(p peer) bool {
	d.mu.RLock()
	_, ok := d.by[p]
	d.mu.RUnlock()
	return ok
}

// replicaPending is what the drain reads of a replica's connection: the requests routed to
// it that are worth waiting for, and the client sessions they came from (conn.awaiting).
// *conn implements it; a peer that does not (a unit test's fake) has nothing in flight.
type replicaPending interface {
	awaiting(now time.Time, live func(replyTo string) bool, sids map[string]bool) int
}

// replySID is the sid of the node that receives replies at addr (participant@/path...): the
// SecureDigest of its path, as the session bindings are keyed.
func replySID(addr string) string {
	_, loc, ok := envelope.SplitInbox(addr)
	if !ok || len(loc) == 0 || loc[0] != '/' {
		return ""
	}
	return envelope.SecureDigest(loc)
}

// pendingOf is the number of requests on p a drain waits for and their callers' sids.
func (d *replicaDrains) pendingOf(p peer) (n int, sids map[string]bool) {
	if rp, ok := p.(replicaPending); ok {
		sids = map[string]bool{}
		n = rp.awaiting(time.Now(), d.live, sids)
	}
	return n, sids
}

// startReplicaDrain begins draining p; false (with the drain's status) when it is draining
// already.
func (r *stickyRouter) startReplicaDrain(p peer, by string) (envelope.DrainStatus, bool) {
	d := r.drains
	id := p.ident().systemID
	d.mu.Lock()
	if st, ok := d.by[p]; ok {
		status := r.drainStatus(st) // under the lock: the drain loop updates st
		d.mu.Unlock()
		return status, false
	}
	now := time.Now()
	st := &replicaDrain{p: p, id: id, by: by, start: now, deadline: now.Add(d.timeout),
		moved: map[string]bool{}, closed: map[string]bool{}}
	pools := r.routes.poolsOf(p)
	for key, others := range pools {
		live := 0
		for _, o := range others {
			if _, dr := d.by[o]; !dr {
				live++
			}
		}
		if live == 0 {
			st.lastOf = append(st.lastOf, key)
		}
	}
	sort.Strings(st.lastOf)
	d.by[p] = st
	d.n.Add(1)
	d.active.Add(1)
	d.mu.Unlock()
	d.started.WithLabelValues(by).Inc()
	poolKeys := make([]string, 0, len(pools))
	for k := range pools {
		poolKeys = append(poolKeys, k)
	}
	sort.Strings(poolKeys)
	args := []any{"replica", id, "by", by, "pinned_sessions", r.sessionsOn(p), "pools", poolKeys, "timeout", d.timeout}
	if len(st.lastOf) > 0 {
		r.log.Warn("replica drain started: it is the last replica of its pool, which will be empty once it leaves",
			append(args, "last_of_pools", st.lastOf)...)
	} else {
		r.log.Info("replica drain started: no new sessions; pinned sessions move when idle", args...)
	}
	if !d.manual {
		d.loop.Do(func() {
			r.loops.Add(1)
			go func() { defer r.loops.Done(); r.drainLoop() }() // ends with r.stop; close waits
		})
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
	d.mu.RLock()
	status := r.drainStatus(st)
	d.mu.RUnlock()
	if by == "admin" && d.push != nil {
		d.push(p, status)
	}
	return status, true
}

// drainStatus reports st; the caller holds drains.mu (read).
func (r *stickyRouter) drainStatus(st *replicaDrain) envelope.DrainStatus {
	n, _ := r.drains.pendingOf(st.p)
	s := envelope.DrainStatus{State: envelope.DrainStateDraining, By: st.by, PinnedSessions: r.sessionsOn(st.p),
		InFlight: n, Moved: st.nMoved, LastOfPools: st.lastOf}
	if st.done {
		s.State, s.Result = envelope.DrainStateDrained, st.result
	}
	return s
}

// replicaDrainStatus is p's drain status, ok=false when p is not draining.
func (r *stickyRouter) replicaDrainStatus(p peer) (envelope.DrainStatus, bool) {
	if !r.drains.on() {
		return envelope.DrainStatus{}, false
	}
	r.drains.mu.RLock()
	defer r.drains.mu.RUnlock()
	st, ok := r.drains.by[p]
	if !ok {
		return envelope.DrainStatus{}, false
	}
	return r.drainStatus(st), true
}

// pickDraining is pick while some replica drains: a draining member keeps the channels and
// the busy sessions pinned to it, loses each idle session it had pinned, and is left out of
// the balancer's choice while a member of the pool is not draining; nothing is pinned to it.
func (r *stickyRouter) pickDraining(members []peer, h *envelope.Header) peer {
	live := members
	for i, m := range members {
		if r.drains.draining(m) {
			live = make([]peer, 0, len(members))
			live = append(live, members[:i]...)
			for _, m2 := range members[i+1:] {
				if !r.drains.draining(m2) {
					live = append(live, m2)
				}
			}
			break
		}
	}
	if len(live) == 0 {
		live = members // the last replica(s) of the pool still serve it, pinning nothing
	}
	if len(members) == 1 && !r.drains.draining(members[0]) {
		r.note(members[0], h)
		return members[0]
	}
	if r.table == nil {
		return r.balance(live, h.ID)
	}
	if len(h.EncKID) > 0 {
		// A channel is readable only where it was opened: a draining replica keeps its
		// channels until the drain ends (the client was or will be told to re-open them).
		if id, ok := r.table.LookupChannel(string(h.EncKID)); ok {
			if c := memberByID(members, id); c != nil {
				return c
			}
		}
	}
	if len(h.SID) > 0 {
		if id, ok := r.table.Lookup(string(h.SID)); ok {
			if c := memberByID(members, id); c != nil {
				if !r.drains.draining(c) {
					r.note(c, h)
					return c
				}
				// Not idle: this call joins the ones in flight there. A SecureOpen never does:
				// a new channel on a draining replica would be closed again at once; the
				// session moves now, and its calls in flight there are still answered (over
				// the channels they went on, which the client was told to re-open).
				open := string(h.FrameType) == envelope.TypeSecureOpen && len(live) < len(members)
				if _, busy := r.drains.pendingOf(c); busy[string(h.SID)] && !open {
					r.note(c, h)
					return c
				}
				r.moveSession(c, string(h.SID), "idle")
			}
		}
	}
	key := h.SID
	if len(key) == 0 {
		key = h.ID
	}
	c := r.balance(live, key)
	if c != nil && len(h.SID) > 0 {
		if !r.drains.draining(c) {
			r.table.Bind(string(h.SID), c.ident().systemID, 0)
			r.repinned(string(h.SID), c)
		}
		r.note(c, h)
	}
	return c
}

// repinned logs where a session moved off a draining replica was pinned next.
func (r *stickyRouter) repinned(sid string, to peer) {
	d := r.drains
	d.mu.RLock()
	from, ok := d.repin[sid]
	d.mu.RUnlock()
	if !ok {
		return
	}
	d.mu.Lock()
	delete(d.repin, sid)
	d.mu.Unlock()
	r.log.Info("replica drain: session re-pinned", "from", from, "to", to.ident().systemID, "client", r.clientName(sid))
}

func (r *stickyRouter) clientName(sid string) string {
	if c := r.routes.bySID(sid); c != nil {
		return c.ident().systemID
	}
	return "sid:" + sid
}

// replyPassed runs after a reply from src was forwarded: when src drains and that reply left
// its client without a call in flight there, the client's session moves now (its SecureClose
// queued behind the reply).
func (r *stickyRouter) replyPassed(src peer, h *envelope.Header) {
	if r.table == nil || !r.drains.draining(src) {
		return
	}
	sid := replySID(string(h.To))
	if sid == "" {
		return
	}
	if _, busy := r.drains.pendingOf(src); busy[sid] {
		return
	}
	r.moveSession(src, sid, "idle")
}

// moveSession moves client sid off the draining replica c: its session binding is removed
// and it gets a SecureClose for every channel it holds there that it was not told about yet.
func (r *stickyRouter) moveSession(c peer, sid, reason string) {
	d := r.drains
	var cids []string
	for _, rc := range r.table.ReplicaBindings(c.ident().systemID) {
		if rc.ClientSID == sid {
			cids = rc.ChannelIDs
			break
		}
	}
	d.mu.Lock()
	st, ok := d.by[c]
	if !ok || st.done {
		d.mu.Unlock()
		return
	}
	unbound := r.table.UnbindIf(sid, st.id)
	var closeNow []string
	for _, cid := range cids {
		// The last replica of a pool keeps its channels: there is nowhere to re-open them.
		if len(st.lastOf) == 0 && !st.closed[cid] {
			st.closed[cid] = true
			closeNow = append(closeNow, cid)
		}
	}
	first := !st.moved[sid]
	if unbound || (first && len(closeNow) > 0) {
		st.moved[sid] = true
		if first {
			st.nMoved++
			d.repin[sid] = st.id
		}
	}
	d.mu.Unlock()
	if !unbound && len(closeNow) == 0 {
		return
	}
	if first {
		d.moved.WithLabelValues(reason).Inc()
	}
	// The channels told closed are unbound now, not at the drain's end, and remembered as
	// closed: a request the client encrypted for one before the SecureClose reached it is
	// nacked CHANNEL_CLOSED (route.go). Forwarded to the draining replica it would run there
	// while the client, which forgets the channel on the SecureClose and cannot read the reply,
	// re-sends it over a new channel: the request would run twice (#20).
	now := time.Now()
	for _, cid := range closeNow {
		if r.table.UnbindChannelIf(cid, st.id) {
			r.closed.add(cid, now)
		}
	}
	client := r.routes.bySID(sid)
	sent := 0
	if client != nil {
		for _, cid := range closeNow {
			if r.sendSecureClose(client, cid, "replica "+st.id+" is draining: re-open the channel (the next call goes to another replica)") {
				sent++
			}
		}
		r.metrics.secureCloses.Add(float64(sent))
	}
	r.log.Info("replica drain: session moved off", "from", st.id, "client", r.clientName(sid), "reason", reason,
		"secure_close_sent", sent)
}

// drainLoop moves the idle sessions of every draining replica and ends the drains; it runs
// from the first drain until the router closes.
func (r *stickyRouter) drainLoop() {
	t := time.NewTicker(replicaDrainTick)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.drains.wake:
		}
		if r.drains.active.Load() == 0 {
			select {
			case <-r.stop:
				return
			case <-r.drains.wake:
			}
		}
		r.drainStep(time.Now())
	}
}

// drainStep is one look at every drain in progress.
func (r *stickyRouter) drainStep(now time.Time) {
	d := r.drains
	d.mu.RLock()
	var todo []*replicaDrain
	for _, st := range d.by {
		if !st.done {
			todo = append(todo, st)
		}
	}
	d.mu.RUnlock()
	for _, st := range todo {
		late := !now.Before(st.deadline)
		n, busy := r.drains.pendingOf(st.p)
		unmoved := 0
		if r.table != nil {
			for _, rc := range r.table.ReplicaBindings(st.id) {
				d.mu.RLock()
				todo := rc.Session && !st.moved[rc.ClientSID]
				if len(st.lastOf) == 0 {
					for _, cid := range rc.ChannelIDs {
						if !st.closed[cid] {
							todo = true
						}
					}
				}
				d.mu.RUnlock()
				if !todo {
					continue
				}
				if busy[rc.ClientSID] && !late {
					unmoved++
					continue
				}
				reason := "idle"
				if late {
					reason = "timeout"
				}
				r.moveSession(st.p, rc.ClientSID, reason)
			}
		}
		pinned := r.sessionsOn(st.p)
		switch {
		case late:
			r.finishDrain(st, "timeout", n)
		case pinned == 0 && n == 0 && unmoved == 0:
			d.mu.Lock()
			if st.quiet.IsZero() {
				st.quiet = now
			}
			quietFor := now.Sub(st.quiet)
			d.mu.Unlock()
			if quietFor >= replicaDrainLinger {
				r.finishDrain(st, "idle", 0)
			}
		default:
			d.mu.Lock()
			st.quiet = time.Time{}
			d.mu.Unlock()
		}
	}
}

// finishDrain marks st drained: the channel bindings the drain closed are removed (and
// remembered as closed, as for a lost replica), and the replica will read "drained" in its
// next heartbeat ack.
func (r *stickyRouter) finishDrain(st *replicaDrain, result string, inFlight int) {
	d := r.drains
	d.mu.Lock()
	if st.done {
		d.mu.Unlock()
		return
	}
	st.done, st.result = true, result
	cids := make([]string, 0, len(st.closed))
	for cid := range st.closed {
		cids = append(cids, cid)
	}
	moved, lastOf := st.nMoved, st.lastOf
	d.mu.Unlock()
	d.active.Add(-1)
	now := time.Now()
	if r.table != nil {
		for _, cid := range cids {
			if r.table.UnbindChannelIf(cid, st.id) {
				r.closed.add(cid, now)
			}
		}
	}
	d.finished.WithLabelValues(result).Inc()
	if d.push != nil {
		d.mu.RLock()
		status := r.drainStatus(st)
		d.mu.RUnlock()
		d.push(st.p, status)
	}
	args := []any{"replica", st.id, "result", result, "sessions_moved", moved, "in_flight", inFlight,
		"pinned_sessions", r.sessionsOn(st.p), "took", now.Sub(st.start).Round(time.Millisecond)}
	if len(lastOf) > 0 {
		args = append(args, "pools_left_empty", lastOf)
	}
	r.log.Info("replica drained: it may exit now", args...)
}

// drainGone ends the drain of a replica that detached; lost is the number of its sessions
// replicaGone purged, counted as moved (replica_gone).
func (r *stickyRouter) drainGone(p peer, lost int) {
	d := r.drains
	if !d.on() {
		return
	}
	d.mu.Lock()
	st, ok := d.by[p]
	if ok {
		delete(d.by, p)
	}
	d.mu.Unlock()
	if !ok {
		return
	}
	d.mu.Lock()
	for sid, from := range d.repin {
		if from == st.id {
			delete(d.repin, sid)
		}
	}
	d.mu.Unlock()
	d.n.Add(-1)
	if lost > 0 {
		d.moved.WithLabelValues("replica_gone").Add(float64(lost))
	}
	if !st.done {
		d.active.Add(-1)
		d.finished.WithLabelValues("gone").Inc()
		r.log.Info("replica drain ended: the replica detached first", "replica", st.id, "sessions_purged", lost)
	}
}

// replicaDrainStat is one drain in /stats (replicaDrains).
type replicaDrainStat struct {
	SystemID string `json:"systemId"`
	envelope.DrainStatus
	StartedAt time.Time `json:"startedAt"`
}

func (r *stickyRouter) replicaDrainStats() []replicaDrainStat {
	d := r.drains
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]replicaDrainStat, 0, len(d.by))
	for _, st := range d.by {
		out = append(out, replicaDrainStat{SystemID: st.id, DrainStatus: r.drainStatus(st), StartedAt: st.start})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SystemID < out[j].SystemID })
	return out
}

// drainHeartbeat handles the drain payload of a NodeHeartbeat from c and returns the payload
// of its ack: the drain status while c drains, else nil. A heartbeat is hop-local, so a
// drain request concerns c itself; one naming another system id is refused (nacked
// DRAIN_REFUSED to c's system inbox, counted, logged) and drains nothing.
func (s *Sentinel) drainHeartbeat(c *conn, h *envelope.Header, msg []byte) json.RawMessage {
	if bytes.Contains(msg, []byte(`"drain"`)) {
		s.drainRequest(c, h, msg)
	}
	st, ok := s.sticky.replicaDrainStatus(c)
	if !ok {
		return nil
	}
	b, err := json.Marshal(envelope.DrainPayload{Drain: &st})
	if err != nil {
		return nil
	}
	return b
}

func (s *Sentinel) drainRequest(c *conn, h *envelope.Header, msg []byte) {
	// A heartbeat whose payload cannot be read is answered, not ignored: the SDK would wait
	// out its whole drain timeout for a drain that never began.
	malformed := func(why string) {
		why = "drain heartbeat refused: " + why
		s.sticky.drains.refusals.WithLabelValues("malformed").Inc()
		s.securityRefusal(c, refusalDrainMalformed, why)
		s.nackSys(c, h, CodeDrainRefused, why)
	}
	e, err := envelope.Decode(msg)
	if err != nil {
		malformed("envelope: " + err.Error())
		return
	}
	f, err := e.DecodeFrame()
	if err != nil {
		malformed("frame: " + err.Error())
		return
	}
	hb, ok := f.(*envelope.NodeHeartbeat)
	if !ok || len(hb.Payload) == 0 {
		return // "drain" appeared elsewhere in the envelope: not a drain request
	}
	var p envelope.DrainPayload
	if err := json.Unmarshal(hb.Payload, &p); err != nil {
		malformed("payload: " + err.Error())
		return
	}
	if p.Drain == nil || !p.Drain.Request {
		return
	}
	if hb.SystemID != "" && hb.SystemID != c.systemID {
		why := "a drain heartbeat drains the connection it arrives on; it named system id " + hb.SystemID
		s.sticky.drains.refusals.WithLabelValues("foreign_system_id").Inc()
		s.securityRefusal(c, refusalDrainForeign, why, "named", hb.SystemID)
		s.nackSys(c, h, CodeDrainRefused, why)
		return
	}
	// c.held is read on c's reader goroutine, which this is.
	if _, draining := s.sticky.replicaDrainStatus(c); !draining && len(s.routes.poolsOf(c)) == 0 && len(c.held.caps) == 0 {
		// Only a node others can be moved off drains: a pool replica or a capability
		// provider. A drain of anything else would only put the routing path on its slower,
		// drain-aware branch for as long as c stays.
		why := "drain heartbeat refused: " + c.systemID + " is a member of no pool (participant@*.domain) and advertises no capability: nothing can be moved off it"
		s.sticky.drains.refusals.WithLabelValues("not_replica").Inc()
		s.log.Info("replica drain refused", "system_id", c.systemID, "remote", c.remote, "reason", "not_replica")
		s.nackSys(c, h, CodeDrainRefused, why)
		return
	}
	if _, started := s.sticky.startReplicaDrain(c, "self"); started && s.cl != nil {
		s.cl.publishAddresses(c) // draining in the directory: every sentinel moves off it
	}
}

// pushDrainStatus sends p an unsolicited NodeHeartbeatAck carrying its drain status. The
// reference's nodes take a heartbeat ack without refId as a plain one (liveness, routing
// epoch unchanged); the Go SDK reads the status from it (node/drain.go).
func (s *Sentinel) pushDrainStatus(p peer, st envelope.DrainStatus) {
	payload, err := json.Marshal(envelope.DrainPayload{Drain: &st})
	if err != nil {
		return
	}
	e, err := envelope.New(&envelope.NodeHeartbeatAck{Ack: envelope.Ack{OK: true}, RoutingEpoch: s.epoch, Payload: payload})
	if err != nil {
		return
	}
	e.SID, e.CorrID = s.sid, envelope.NewID()
	p.sendOwn(e, 0)
}

// handleReplicaDrain is POST /admin/replicas/{systemId}/drain (admin token required, as for
// POST /admin/drain).
func (s *Sentinel) handleReplicaDrain(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("systemId")
	if s.opts.AdminToken == "" {
		s.limits.refused(limitAdminToken, "", r.RemoteAddr, "admin endpoint refused", "path", r.URL.Path,
			"reason", "POST /admin/replicas/{id}/drain needs an admin token configured")
		http.Error(w, "POST /admin/replicas/{systemId}/drain is disabled: no admin token is configured (FAME_ADMIN_TOKEN); send SIGTERM to the replica instead", http.StatusForbidden)
		return
	}
	refuse := func(status int, reason, why string) {
		s.sticky.drains.refusals.WithLabelValues(reason).Inc()
		s.log.Warn("replica drain refused", "system_id", id, "remote", r.RemoteAddr, "reason", reason, "detail", why)
		http.Error(w, why, status)
	}
	p := s.routes.child([]byte(id))
	if p == nil && s.cl != nil {
		// Clustered: only the replica's own sentinel can push it its drain status and see
		// its calls in flight end, so the drain is started there; this one says where.
		if rep, ok := s.cl.dir.Get(id); ok && rep.Sentinel != "" && rep.Sentinel != s.id {
			refuse(http.StatusConflict, "attached_elsewhere", "replica "+id+" is attached to sentinel "+rep.Sentinel+
				", not to "+s.id+": POST /admin/replicas/"+id+"/drain to sentinel "+rep.Sentinel)
			return
		}
	}
	if p == nil {
		refuse(http.StatusNotFound, "unknown_system_id", "no node with system id "+id+" is attached")
		return
	}
	pools := s.routes.poolsOf(p)
	if len(pools) == 0 {
		refuse(http.StatusNotFound, "not_replica", "system id "+id+" is attached but is a member of no pool (participant@*.domain); only pool replicas are drained")
		return
	}
	st, started := s.sticky.startReplicaDrain(p, "admin")
	if !started {
		refuse(http.StatusConflict, "already_draining", "replica "+id+" is draining already (state "+st.State+", "+strconv.Itoa(st.PinnedSessions)+" pinned sessions)")
		return
	}
	if s.cl != nil {
		s.cl.publishAddresses(p) // draining in the directory: every sentinel moves off it
	}
	keys := make([]string, 0, len(pools))
	for k := range pools {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ans := map[string]any{"systemId": id, "draining": true, "pinnedSessions": st.PinnedSessions, "inFlight": st.InFlight,
		"pools": keys, "timeout": s.sticky.drains.timeout.String()}
	if len(st.LastOfPools) > 0 {
		ans["lastOfPools"] = st.LastOfPools
		ans["warning"] = "replica " + id + " is the last replica of " + strings.Join(st.LastOfPools, ", ") + ": the pool will be empty once it leaves"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(ans)
}
