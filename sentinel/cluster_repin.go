package sentinel

import (
	"strings"
	"sync"
	"time"

	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/envelope"
)

// Re-pins, SecureClose and drains of a clustered sentinel (issue #15, docs/cluster.md "Failure
// cases"). The single sentinel's rules, applied over the cluster:
//
//   - A replica lost past the grace window (its sentinel died, it detached and did not come
//     back): every channel a client attached HERE opened on it is closed at once with a
//     SecureClose, once per channel (the sweep below), its binding deleted and the channel
//     remembered as closed, so a request still encrypted for it is nacked CHANNEL_CLOSED
//     instead of reaching a replica without its keys. The client's next call re-pins its session
//     to the next replica in HRW order, and it re-opens its channels there. A client that
//     moved to another sentinel is told there, on its next call on the channel (channelAway).
//   - A replica whose sentinel drains (SIGTERM: Bus.SetDraining, heartbeat "draining"): no new
//     pin goes to it, the sessions pinned to it move at their next call with no grace and no
//     nack, and each channel opened on it gets a SecureClose (the client re-opens it on the
//     session's new replica). Requests already encrypted for such a channel still go to it:
//     its keys are there and its sentinel delivers until its drain ends.
//   - No live replica for an address at all, while the directory still knows some that are
//     away (their sentinel silent, or draining): a bound session within the grace window, or a
//     new one, is nacked PEER_UNREACHABLE, which at-least-once callers re-send, not NO_ROUTE.

// maxClusterChannels bounds the channel index; past it, a channel is closed only when its
// client next uses it (channelAway), as on another sentinel.
const maxClusterChannels = 1 << 16

// clusterChannels indexes the channels opened by clients attached to this sentinel, by the
// replica that holds them: replica -> cid -> the opener's session id. Safe for concurrent use.
type clusterChannels struct {
	mu        sync.Mutex
	byReplica map[string]map[string]string
	n         int
}

func (c *clusterChannels) add(replica, cid, sid string) {
	if replica == "" || cid == "" || sid == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byReplica[replica]
	if _, ok := m[cid]; !ok {
		if c.n >= maxClusterChannels {
			return
		}
		c.n++
	}
	if m == nil {
		m = map[string]string{}
		c.byReplica[replica] = m
	}
	m[cid] = sid
}

func (c *clusterChannels) remove(replica, cid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.byReplica[replica]; m != nil {
		if _, ok := m[cid]; ok {
			delete(m, cid)
			c.n--
			if len(m) == 0 {
				delete(c.byReplica, replica)
			}
		}
	}
}

// take removes and returns replica's channels (of session sid only, when sid is not empty).
func (c *clusterChannels) take(replica, sid string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byReplica[replica]
	if sid == "" {
		delete(c.byReplica, replica)
		c.n -= len(m)
		return m
	}
	var out map[string]string
	for cid, s := range m {
		if s == sid {
			if out == nil {
				out = map[string]string{}
			}
			out[cid] = s
			delete(m, cid)
			c.n--
		}
	}
	if len(m) == 0 {
		delete(c.byReplica, replica)
	}
	return out
}

func (c *clusterChannels) replicas() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.byReplica))
	for r := range c.byReplica {
		out = append(out, r)
	}
	return out
}

// prune drops the channels of clients that are no longer attached here (gone says so).
func (c *clusterChannels) prune(gone func(sid string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r, m := range c.byReplica {
		for cid, sid := range m {
			if gone(sid) {
				delete(m, cid)
				c.n--
			}
		}
		if len(m) == 0 {
			delete(c.byReplica, r)
		}
	}
}

// Why a session re-pinned or a channel was closed (metric labels).
const (
	whyLost     = "lost"
	whyDraining = "draining"
	// whyReplicaDrain: the replica itself drains (POST /admin/replicas/{id}/drain or its drain
	// heartbeat) while its sentinel stays. It leaves once drained, so its channels are closed
	// as the single sentinel's replica drain closes them: unbound and remembered closed, a
	// request still encrypted for one nacked CHANNEL_CLOSED rather than run on the replica
	// while the client re-sends it over a new channel.
	whyReplicaDrain = "replica_drain"
)

// routed is routeTo for a replica of the live set: one with no route (detached here a moment
// before its directory entry goes) is away for a moment, a retryable nack, not NO_ROUTE.
func (cl *clusterRouter) routed(replica string, sticky bool) (peer, resolveReason, bool) {
	if p := cl.routeTo(replica); p != nil {
		return p, reasonNone, sticky
	}
	return nil, reasonPoolAway, false
}

// replicaState is where replica stands as this sentinel sees it: up when attached here or up
// on a live peer, draining when its sentinel drains, down otherwise (not in the directory,
// its sentinel silent, or said to be here but not attached).
func (cl *clusterRouter) replicaState(replica string) cluster.ReplicaState {
	if p := cl.routes.child([]byte(replica)); p != nil {
		if cl.drainingHere != nil && cl.drainingHere(p) {
			return cluster.ReplicaDraining // drained by an operator or by itself
		}
		return cluster.ReplicaUp
	}
	r, ok := cl.dir.Get(replica)
	if !ok || r.Sentinel == cl.self {
		return cluster.ReplicaDown
	}
	return r.State
}

func (cl *clusterRouter) draining(replica string) bool {
	return cl.replicaState(replica) == cluster.ReplicaDraining
}

// drainWhy tells a draining replica's own drain (whyReplicaDrain) from its sentinel's
// (whyDraining): drained itself, it is draining here, or listed draining by a sentinel whose
// heartbeats say up.
func (cl *clusterRouter) drainWhy(replica string) string {
	if p := cl.routes.child([]byte(replica)); p != nil {
		if cl.drainingHere != nil && cl.drainingHere(p) {
			return whyReplicaDrain
		}
		return whyDraining
	}
	if r, ok := cl.dir.Get(replica); ok && r.State == cluster.ReplicaDraining && cl.bus.State(r.Sentinel) == cluster.PeerUp {
		return whyReplicaDrain
	}
	return whyDraining
}

// closeOnce reports whether cid is closed now for the first time (and remembers it closed).
func (cl *clusterRouter) closeOnce(cid string, now time.Time) bool {
	if cl.closed.has(cid, now) {
		return false
	}
	cl.closed.add(cid, now)
	return true
}

func (cl *clusterRouter) sendClose(client peer, cid, reason, why string) bool {
	if cl.secureClose == nil || !cl.secureClose(client, cid, reason) {
		return false
	}
	cl.m.closes.WithLabelValues(why).Inc()
	return true
}

// channelAway resolves a request on a channel whose replica is not live: still routed to a
// draining replica (its keys are there), nacked PEER_UNREACHABLE within the grace window of a
// lost one, and past it closed (SecureClose to the client that sent it, once) and nacked
// CHANNEL_CLOSED.
func (cl *clusterRouter) channelAway(src peer, kid string, b cluster.Binding, now time.Time) (peer, resolveReason, bool) {
	if cl.draining(b.Replica) {
		if cl.drainWhy(b.Replica) == whyReplicaDrain {
			// Its SecureClose is sent (or crossing this request): the client re-sends over a
			// new channel, so running this one too would run it twice.
			cl.store.Delete(cluster.Channel, kid)
			cl.chans.remove(b.Replica, kid)
			if cl.closeOnce(kid, now) && src != nil {
				cl.sendClose(src, kid, "replica "+b.Replica+" is draining: re-open the channel", whyReplicaDrain)
			}
			return nil, reasonChannelClosed, false
		}
		if p := cl.routeTo(b.Replica); p != nil {
			return p, reasonNone, true
		}
	}
	if cl.withinGrace(b.Replica, now) {
		return nil, reasonReplicaLost, false
	}
	// The channel's keys live in the lost replica: the client must re-open it.
	cl.store.Delete(cluster.Channel, kid)
	cl.chans.remove(b.Replica, kid)
	if cl.closeOnce(kid, now) && src != nil {
		cl.sendClose(src, kid, "replica "+b.Replica+" is gone; re-open the channel", whyLost)
	}
	return nil, reasonChannelClosed, false
}

// closeSessionChannels closes the channels session sid opened on replica when the session
// re-pins away from it, so that the client re-opens them on the new replica: src is the
// client whose call re-pinned it. The sweep usually did it already.
func (cl *clusterRouter) closeSessionChannels(src peer, sid, replica, why string) {
	m := cl.chans.take(replica, sid)
	if len(m) == 0 || src == nil {
		return
	}
	cl.closeChannels(replica, m, func(string) peer { return src }, why)
}

// closeChannels sends the SecureClose of each channel in m (cid -> opener sid) to its client
// (client(sid)). A lost replica's channels are also unbound and remembered closed; a
// draining one's stay bound, for the requests already encrypted for them.
func (cl *clusterRouter) closeChannels(replica string, m map[string]string, client func(sid string) peer, why string) int {
	now := time.Now()
	reason := "replica " + replica + " is gone; re-open the channel"
	switch why {
	case whyDraining:
		reason = "replica " + replica + " is draining (its sentinel stops): re-open the channel"
	case whyReplicaDrain:
		reason = "replica " + replica + " is draining: re-open the channel"
	}
	sent := 0
	for cid, sid := range m {
		c := client(sid)
		if c == nil {
			continue // the client moved: its new sentinel closes the channel on its next use
		}
		if why == whyLost || why == whyReplicaDrain {
			b, ok := cl.store.Lookup(cluster.Channel, cid)
			if !ok || b.Replica != replica {
				continue // re-bound or closed meanwhile
			}
			cl.store.Delete(cluster.Channel, cid)
			if !cl.closeOnce(cid, now) {
				continue
			}
		}
		if cl.sendClose(c, cid, reason, why) {
			sent++
		}
	}
	if sent > 0 {
		cl.log.Info("channels closed: their replica left", "replica", replica, "why", why, "secure_close_sent", sent)
	}
	return sent
}

// lostWith starts the grace window of the replicas of a peer sentinel that went down now,
// rather than at the first call that finds them lost (a caller backing off would otherwise
// wait a whole retry interval more).
func (cl *clusterRouter) lostWith(sentinel string, now time.Time) {
	for _, r := range cl.dir.All() {
		if r.Sentinel == sentinel && cl.routes.child([]byte(r.ID)) == nil {
			cl.withinGrace(r.ID, now)
		}
	}
}

// wake makes the sweep look now (a peer sentinel changed state).
func (cl *clusterRouter) wake() {
	select {
	case cl.kick <- struct{}{}:
	default:
	}
}

// sweepChannels closes, as soon as it knows, the channels of replicas lost past the grace
// window or draining. Owned by the Sentinel (s.wg); ends when stop closes.
func (cl *clusterRouter) sweepChannels(stop <-chan struct{}) {
	iv := min(max(cl.grace/4, 50*time.Millisecond), 500*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	pruneEvery := int(30*time.Second/iv) + 1
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-cl.kick:
		}
		cl.checkChannels(time.Now())
		if n%pruneEvery == 0 {
			cl.chans.prune(func(sid string) bool { return cl.routes.bySID(sid) == nil })
		}
	}
}

func (cl *clusterRouter) checkChannels(now time.Time) {
	// A replica back (re-attached anywhere) starts a fresh grace window the next time it is
	// lost, whether or not a call noticed it back.
	cl.mu.Lock()
	var missing []string
	for r := range cl.missing {
		missing = append(missing, r)
	}
	cl.mu.Unlock()
	for _, r := range missing {
		if cl.replicaState(r) == cluster.ReplicaUp {
			cl.found(r)
		}
	}
	for _, r := range cl.chans.replicas() {
		switch cl.replicaState(r) {
		case cluster.ReplicaUp:
		case cluster.ReplicaDraining:
			cl.closeChannels(r, cl.chans.take(r, ""), cl.routes.bySID, cl.drainWhy(r))
		default:
			if !cl.withinGrace(r, now) {
				cl.closeChannels(r, cl.chans.take(r, ""), cl.routes.bySID, whyLost)
			}
		}
	}
}

// peerPathAlive reports whether path ("/<sentinel>/...") belongs to a peer sentinel that is
// up or draining: what is addressed there can still be delivered.
func (cl *clusterRouter) peerPathAlive(path string) bool {
	id := strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(id, '/'); i >= 0 {
		id = id[:i]
	}
	return id != "" && id != cl.self && cl.bus.State(id) != cluster.PeerDown
}

// servingFor is liveFor over every entry of the directory, in any state.
func (cl *clusterRouter) servingFor(dest, participant, host []byte) []cluster.Replica {
	if rs := cl.dir.Serving(string(dest)); len(rs) > 0 {
		return rs
	}
	for h := host; len(h) > 0; {
		if rs := cl.dir.Serving(string(participant) + "@*." + string(h)); len(rs) > 0 {
			return rs
		}
		i := 0
		for i < len(h) && h[i] != '.' {
			i++
		}
		if i == len(h) {
			break
		}
		h = h[i+1:]
	}
	return nil
}

// resolveNoLive resolves a logical address none of whose replicas is live: a binding to a
// draining replica still routes there (there is nowhere else to go), one to a lost replica
// within the grace window waits (PEER_UNREACHABLE); an address whose replicas the directory
// still lists as draining or away routes to a draining one or is nacked PEER_UNREACHABLE
// (reasonPoolAway). Only an address no replica serves is NO_ROUTE.
func (cl *clusterRouter) resolveNoLive(src peer, h *envelope.Header, dest, participant, host []byte) (peer, resolveReason, bool) {
	now := time.Now()
	if cl.sticky && len(h.EncKID) > 0 {
		kid := string(h.EncKID)
		if b, ok := cl.store.Lookup(cluster.Channel, kid); ok {
			return cl.channelAway(src, kid, b, now)
		}
		if cl.closed.has(kid, now) {
			return nil, reasonChannelClosed, false
		}
	}
	if cl.sticky && len(h.SID) > 0 {
		if b, ok := cl.store.Lookup(cluster.Session, string(h.SID)); ok {
			if cl.draining(b.Replica) {
				if p := cl.routeTo(b.Replica); p != nil {
					return p, reasonNone, true
				}
			} else if cl.withinGrace(b.Replica, now) {
				return nil, reasonReplicaLost, false
			}
		}
	}
	var draining []string
	away := false
	for _, r := range cl.servingFor(dest, participant, host) {
		switch r.State {
		case cluster.ReplicaDraining:
			draining = append(draining, r.ID)
		default:
			away = true
		}
	}
	if len(draining) > 0 {
		key := h.SID
		if len(key) == 0 {
			key = h.ID
		}
		if id, ok := cluster.Pick(string(key), draining); ok {
			if p := cl.routeTo(id); p != nil {
				return p, reasonNone, false
			}
		}
		away = true
	}
	if away {
		return nil, reasonPoolAway, false
	}
	return nil, reasonNone, false
}
