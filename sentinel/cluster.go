package sentinel

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/wsengine"
)

// Clustered routing (issue #15, docs/cluster.md). A clustered sentinel is given its cluster
// membership at construction (WithCluster) as three small interfaces — the binding store, the
// bus and the replica directory of package cluster — and holds no pointer to the membership
// itself. What changes:
//
//   - A logical address resolves over the cluster's live replica set (directory.Live: the
//     replicas attached here and those attached to peer sentinels), placed by pure HRW so
//     that every sentinel computes the same replica for a key.
//   - Session and channel bindings go through the BindingStore: lookups read its local LRU,
//     creates and re-pins are written in the background (the hot path never waits on NATS).
//   - A call whose replica is attached to another sentinel is published to that sentinel on
//     the bus, one hop, as "<replica id>\n<envelope bytes>"; the receiver delivers it to its
//     own child or refuses it, never forwards it again. Replies and everything else addressed
//     by physical path go back by the path's first segment, the sentinel id.
//   - A bound replica that leaves the live set (its sentinel died, it detached) keeps its
//     bindings for Grace: calls meanwhile are nacked PEER_UNREACHABLE (at-least-once callers
//     re-send), and a replica that re-attaches to any sentinel within Grace serves them again.
//     After Grace a session re-pins to the next replica in HRW order and a channel is closed.

// ClusterBus is what the sentinel uses of cluster.Bus.
type ClusterBus interface {
	Publish(to string, env []byte) error
	Subscribe(fn func(from string, env []byte)) error
	State(sentinel string) cluster.PeerState
	OnPeer(fn func(sentinel string, s cluster.PeerState))
	// SetDraining makes this sentinel's heartbeats say draining: peers stop placing new pins
	// on its replicas and move the sessions pinned there (cluster_repin.go).
	SetDraining(bool)
}

// ClusterDirectory is what the sentinel uses of the cluster's replica directory.
type ClusterDirectory interface {
	Set(r cluster.Replica)
	Remove(id string)
	Get(id string) (cluster.Replica, bool)
	Live(address string) []string
	// Serving is the address's entries in any state; asked only when Live is empty.
	Serving(address string) []cluster.Replica
	All() []cluster.Replica
}

// ClusterLink is a clustered sentinel's membership (WithCluster). Store, Bus and Directory are
// required; Grace defaults to DefaultClusterGrace.
type ClusterLink struct {
	Store     cluster.BindingStore
	Bus       ClusterBus
	Directory ClusterDirectory
	Grace     time.Duration
	Rate      RateSharer // shares the rate limits' consumption (ratelimit_cluster.go); nil: per sentinel
	// Keys is the cluster's key directory (seclayer_cluster.go), required by the signing
	// profiles (overlay, strict-overlay).
	Keys ClusterKeys
}

// DefaultClusterGrace is how long a lost replica keeps its bindings.
const DefaultClusterGrace = 2 * time.Second

// maxRemotePending bounds the requests forwarded to one peer sentinel and not yet answered.
const maxRemotePending = 1 << 16

// WithCluster makes the sentinel one of a cluster. The sentinel's id must be its cluster id.
func WithCluster(l ClusterLink) Option { return func(s *Sentinel) { s.clusterLink = &l } }

// Refusal reasons of the cluster bus (fame_cluster_bus_refusals_total).
const (
	busRefusedMalformed   = "malformed"    // not "<target>\n<envelope>", or no envelope header
	busRefusedNotLocal    = "not_local"    // addressed to a path not under this sentinel: never re-forwarded
	busRefusedNotAttached = "not_attached" // the named replica is not attached here (any more)
	busRefusedOverloaded  = "overloaded"   // the replica's queue or pending bound refused it
)

// clusterMetrics are the sentinel's fame_cluster_* series (the cluster package has its own).
type clusterMetrics struct {
	routed      *prometheus.CounterVec // where: local, remote
	busRefusals *prometheus.CounterVec // reason
	repins      prometheus.Counter
	// closes: SecureClose sent for channels whose replica was lost (past grace) or drains.
	closes     *prometheus.CounterVec
	graceNacks prometheus.Counter
	awayNacks  prometheus.Counter // no live replica, the directory lists some away (reasonPoolAway)
	peerNacks  prometheus.Counter
	// movedDeliveries: envelopes for /<dead sentinel>/<child> delivered to that child, which
	// re-attached here.
	movedDeliveries prometheus.Counter
}

func newClusterMetrics(reg prometheus.Registerer, dir ClusterDirectory) *clusterMetrics {
	m := &clusterMetrics{
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_routed_total",
			Help: "Envelopes to a logical address routed over the cluster's replica set, by where the replica is (local, remote)."}, []string{"where"}),
		busRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_bus_refusals_total",
			Help: "Envelopes from peer sentinels refused, by reason (malformed, not_local, not_attached, overloaded)."}, []string{"reason"}),
		repins: prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_cluster_repins_total",
			Help: "Session bindings moved to the next replica in HRW order: their replica stayed lost past the grace window, or its sentinel drains."}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_secure_close_total",
			Help: "SecureClose sent to clients attached here for channels whose replica was lost past the grace window (lost), whose sentinel drains (draining) or which is drained itself (replica_drain)."}, []string{"why"}),
		graceNacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_cluster_grace_nacks_total",
			Help: "Calls nacked PEER_UNREACHABLE because their bound replica was lost and still within the grace window."}),
		awayNacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_cluster_away_nacks_total",
			Help: "Calls nacked PEER_UNREACHABLE because no replica of their address was live while the directory listed some (their sentinel silent or draining)."}),
		peerNacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_cluster_peer_nacks_total",
			Help: "Requests forwarded to a peer sentinel and nacked PEER_UNREACHABLE because that sentinel went down."}),
	}
	m.movedDeliveries = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_cluster_moved_deliveries_total",
		Help: "Envelopes addressed under a down sentinel's path delivered to the child, which re-attached here."})
	reg.MustRegister(m.movedDeliveries)
	states := []cluster.ReplicaState{cluster.ReplicaUp, cluster.ReplicaDraining, cluster.ReplicaDown}
	for _, st := range states {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fame_cluster_directory_replicas",
			Help:        "Replicas in the cluster's directory as this sentinel sees it, by state (a replica is down when its sentinel is).",
			ConstLabels: prometheus.Labels{"state": string(st)}}, func() float64 {
			n := 0
			for _, r := range dir.All() {
				if r.State == st {
					n++
				}
			}
			return float64(n)
		}))
	}
	for _, why := range []string{"lost", "draining", "replica_drain"} {
		m.closes.WithLabelValues(why)
	}
	reg.MustRegister(m.routed, m.busRefusals, m.repins, m.closes, m.graceNacks, m.awayNacks, m.peerNacks)
	return m
}

// clusterRouter routes over the cluster. Built by New with what it needs; no back-pointer.
type clusterRouter struct {
	self    string // this sentinel's id (its path is "/"+self)
	store   cluster.BindingStore
	bus     ClusterBus
	dir     ClusterDirectory
	routes  *routeTable
	grace   time.Duration
	sticky  bool
	log     *slog.Logger
	m       *clusterMetrics
	refuse  refuser
	dropped func(reason string) // counts sentinel-wide drops (fame_dropped_total)

	peerSIDs sync.Map // peer sentinel id -> the sid of its path ([]byte), for deliverFromPeer

	// secureClose sends client a SecureClose for channel cid (stickyRouter.sendSecureClose).
	secureClose func(client peer, cid, reason string) bool
	// drainingHere reports whether a replica attached here is being drained
	// (POST /admin/replicas/{id}/drain or its drain heartbeat; replicadrain.go): it is then
	// published draining in the directory, so that every sentinel moves its sessions and
	// channels off it as off a replica whose sentinel drains. nil: none is.
	drainingHere func(p peer) bool
	// closed remembers the channels closed with their lost replica, so that a request still
	// encrypted for one is nacked CHANNEL_CLOSED rather than routed to a replica without its
	// keys (cluster_repin.go).
	closed closedChannels
	// chans indexes the channels opened by clients attached here, by replica, so that a
	// replica's loss or drain closes them at once (cluster_repin.go).
	chans clusterChannels
	// kick wakes the channel sweep when a peer sentinel's state changes.
	kick chan struct{}

	mu      sync.Mutex
	missing map[string]time.Time            // replica -> when a pick first found it lost
	pending map[string]map[string]packedReq // peer sentinel -> corrId -> request forwarded there
	remotes map[[2]string]*remotePeer       // (sentinel, replica) -> peer value, so identity compares
}

func newClusterRouter(l ClusterLink, self string, routes *routeTable, sticky bool, log *slog.Logger,
	reg prometheus.Registerer, refuse refuser) *clusterRouter {
	g := l.Grace
	if g <= 0 {
		g = DefaultClusterGrace
	}
	return &clusterRouter{self: self, store: l.Store, bus: l.Bus, dir: l.Directory, routes: routes, grace: g,
		sticky: sticky, log: log.With("component", "cluster"), m: newClusterMetrics(reg, l.Directory), refuse: refuse,
		missing: map[string]time.Time{}, pending: map[string]map[string]packedReq{}, remotes: map[[2]string]*remotePeer{},
		chans: clusterChannels{byReplica: map[string]map[string]string{}}, kick: make(chan struct{}, 1)}
}

// remotePeer is a replica or client attached to a peer sentinel, as the route table's peer
// interface sees it: what the sentinel originates for it (nacks, SecureClose) is published to
// that sentinel, which delivers it by path.
type remotePeer struct {
	identity
	sentinel string
	cl       *clusterRouter
	keys     atomic.Int32
}

func (p *remotePeer) logger() *slog.Logger               { return p.cl.log.With("peer_sentinel", p.sentinel) }
func (p *remotePeer) close(websocket.StatusCode, string) {}
func (p *remotePeer) closed() bool                       { return p.cl.bus.State(p.sentinel) == cluster.PeerDown }
func (p *remotePeer) keyCount() *atomic.Int32            { return &p.keys }
func (p *remotePeer) sendOwn(e *envelope.Envelope, _ envelope.FlowFlags) bool {
	b, err := e.AppendMarshal([]byte{'\n'}) // empty target: the receiver delivers by path
	if err != nil {
		return false
	}
	return p.cl.bus.Publish(p.sentinel, b) == nil
}

// remote returns the peer value of replica (or "" for a path-addressed peer) on sentinel.
func (cl *clusterRouter) remote(sentinel, replica string) *remotePeer {
	k := [2]string{sentinel, replica}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if p := cl.remotes[k]; p != nil {
		return p
	}
	p := &remotePeer{sentinel: sentinel, cl: cl}
	p.systemID, p.origin, p.path = replica, "cluster", "/"+sentinel
	if replica != "" {
		p.path += "/" + replica
		p.sid = envelope.SecureDigest(p.path)
	}
	if len(cl.remotes) > 4096 {
		clear(cl.remotes) // a cache: identities are rebuilt on demand
	}
	cl.remotes[k] = p
	return p
}

// peerSID is the sid a peer sentinel signs its own envelopes with.
func (cl *clusterRouter) peerSID(id string) []byte {
	if v, ok := cl.peerSIDs.Load(id); ok {
		return v.([]byte)
	}
	sid := []byte(envelope.SecureDigest("/" + id))
	cl.peerSIDs.Store(id, sid)
	return sid
}

// start subscribes to this sentinel's bus subject and to peer liveness.
func (cl *clusterRouter) start(deliver func(from string, target, msg []byte)) error {
	cl.bus.OnPeer(func(id string, st cluster.PeerState) {
		if st == cluster.PeerDown {
			go cl.peerDown(id) // the bus's goroutine must not block on nacks
		}
		cl.wake() // its replicas' channels may have to close (cluster_repin.go)
	})
	return cl.bus.Subscribe(func(from string, data []byte) {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			cl.refused(busRefusedMalformed, from, "no target line")
			return
		}
		deliver(from, data[:i], data[i+1:])
	})
}

func (cl *clusterRouter) refused(reason, from, detail string, attrs ...any) {
	cl.m.busRefusals.WithLabelValues(reason).Inc()
	cl.log.Warn("envelope from peer sentinel refused", append([]any{"reason", reason, "peer_sentinel", from, "detail", detail}, attrs...)...)
}

// target is the peer a live replica is reached through: its local connection, or the remote
// peer of the sentinel it is attached to. nil when it is in neither.
func (cl *clusterRouter) target(replica string) peer {
	if c := cl.routes.child([]byte(replica)); c != nil {
		return c
	}
	r, ok := cl.dir.Get(replica)
	if !ok || r.State == cluster.ReplicaDown || r.Sentinel == cl.self {
		return nil // draining is reachable: its sentinel still delivers what was pinned there
	}
	return cl.remote(r.Sentinel, replica)
}

// liveFor returns the address's live replica set: the exact address first, then the pools
// participant@*.S of host's suffixes, most specific first.
func (cl *clusterRouter) liveFor(dest, participant, host []byte) []string {
	if live := cl.dir.Live(string(dest)); len(live) > 0 {
		return live
	}
	for h := host; len(h) > 0; {
		if live := cl.dir.Live(string(participant) + "@*." + string(h)); len(live) > 0 {
			return live
		}
		dot := bytes.IndexByte(h, '.')
		if dot < 0 {
			break
		}
		h = h[dot+1:]
	}
	return nil
}

// lost reports whether replica, bound but not live, is still within the grace window.
func (cl *clusterRouter) withinGrace(replica string, now time.Time) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	t, ok := cl.missing[replica]
	if !ok {
		if len(cl.missing) > 1024 {
			for id, at := range cl.missing {
				if now.Sub(at) > 10*cl.grace {
					delete(cl.missing, id)
				}
			}
		}
		cl.missing[replica] = now
		return true
	}
	return now.Sub(t) < cl.grace
}

func (cl *clusterRouter) found(replica string) {
	cl.mu.Lock()
	if len(cl.missing) > 0 {
		delete(cl.missing, replica)
	}
	cl.mu.Unlock()
}

// resolveLogical picks the peer for a logical address over the cluster's live set.
func (cl *clusterRouter) resolveLogical(src peer, h *envelope.Header, dest, participant, host []byte) (peer, resolveReason, bool) {
	live := cl.liveFor(dest, participant, host)
	if len(live) == 0 {
		return cl.resolveNoLive(src, h, dest, participant, host) // cluster_repin.go
	}
	if len(live) == 1 && !cl.sticky {
		return cl.routed(live[0], false)
	}
	now := time.Now()
	if cl.sticky && len(h.EncKID) > 0 {
		kid := string(h.EncKID)
		b, ok := cl.store.Lookup(cluster.Channel, kid)
		if ok {
			if _, in := slices.BinarySearch(live, b.Replica); in {
				cl.found(b.Replica)
				return cl.routed(b.Replica, true)
			}
			return cl.channelAway(src, kid, b, now) // cluster_repin.go
		}
		if cl.closed.has(kid, now) {
			return nil, reasonChannelClosed, false // closed with its replica; not bound again
		}
	}
	if cl.sticky && len(h.SID) > 0 {
		sid := string(h.SID)
		if b, ok := cl.store.Lookup(cluster.Session, sid); ok {
			if _, in := slices.BinarySearch(live, b.Replica); in {
				cl.found(b.Replica)
				cl.noteOpen(h, b.Replica)
				return cl.routed(b.Replica, true)
			}
			// A draining replica's sessions move at once (its in-flight calls finish there);
			// a lost one's wait out the grace window, in which it may re-attach.
			why := cl.drainWhy(b.Replica)
			if !cl.draining(b.Replica) {
				if cl.withinGrace(b.Replica, now) {
					return nil, reasonReplicaLost, false
				}
				why = whyLost // past the grace window
			}
			next, _ := cluster.Next(sid, live, b.Replica)
			nb := cluster.Binding{Replica: next, Sentinel: cl.self, Epoch: b.Epoch + 1}
			cl.store.Update(cluster.Session, sid, nb, b.Revision, cl.logWrite("update", sid))
			cl.m.repins.Inc()
			cl.log.Info("session re-pinned", "why", why,
				"sid", sid, "from", b.Replica, "to", next, "grace", cl.grace)
			cl.closeSessionChannels(src, sid, b.Replica, why) // cluster_repin.go
			cl.noteOpen(h, next)
			return cl.routed(next, false)
		}
	}
	key := h.SID
	if len(key) == 0 {
		key = h.ID
	}
	id, _ := cluster.Pick(string(key), live)
	if cl.sticky && len(h.SID) > 0 {
		b, _ := cl.store.Create(cluster.Session, string(h.SID), cluster.Binding{Replica: id, Sentinel: cl.self},
			cl.logWrite("create", string(h.SID)))
		if _, in := slices.BinarySearch(live, b.Replica); in {
			id = b.Replica // another pin reached this store first: follow it
		}
	}
	cl.noteOpen(h, id)
	return cl.routed(id, false)
}

func (cl *clusterRouter) routeTo(replica string) peer {
	p := cl.target(replica)
	if _, remote := p.(*remotePeer); remote {
		cl.m.routed.WithLabelValues("remote").Inc()
	} else if p != nil {
		cl.m.routed.WithLabelValues("local").Inc()
	}
	return p
}

// noteOpen binds a channel opened towards replica (SecureOpen cid), cluster-wide.
func (cl *clusterRouter) noteOpen(h *envelope.Header, replica string) {
	if cl.sticky && string(h.FrameType) == envelope.TypeSecureOpen && len(h.FrameCID) > 0 {
		cid := string(h.FrameCID)
		b, _ := cl.store.Create(cluster.Channel, cid, cluster.Binding{Replica: replica, Sentinel: cl.self, Client: string(h.SID)},
			cl.logWrite("create", cid))
		cl.chans.add(b.Replica, cid, string(h.SID)) // closed at once if that replica goes
	}
}

// logWrite reports a background write that could not be made (the local binding stays).
func (cl *clusterRouter) logWrite(op, id string) func(cluster.Result) {
	return func(r cluster.Result) {
		if r.Err != nil {
			cl.log.Warn("cluster binding write failed; the local binding stays", "op", op, "key", id, "err", r.Err)
		} else if !r.Won {
			cl.log.Debug("cluster binding adopted from another sentinel", "op", op, "key", id, "replica", r.Binding.Replica)
		}
	}
}

// resolveRemotePath returns the peer sentinel a physical path belongs to ("/<sentinel>/..."),
// or nil when its first segment is not a sentinel this one hears.
func (cl *clusterRouter) resolveRemotePath(path []byte) peer {
	rest := path[1:]
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	id := string(rest)
	if id == cl.self {
		return nil
	}
	if cl.bus.State(id) == cluster.PeerDown {
		// The path's sentinel is gone; a child of it that moved here (same system id, so the
		// same identity admission checked) still gets what was addressed to it, such as the
		// reply to a call it made before the move.
		child := path[1+len(id):]
		if len(child) > 1 && child[0] == '/' {
			child = child[1:]
			if i := bytes.IndexByte(child, '/'); i >= 0 {
				child = child[:i]
			}
			if c := cl.routes.child(child); c != nil {
				cl.m.movedDeliveries.Inc()
				return c
			}
		}
		return nil
	}
	return cl.remote(id, "")
}

// conflict is the cluster-wide half of the bind ownership rule (ownership.go has the local
// half): an exact address is refused while another replica serves it, or while a live pool of
// other replicas covers its host (an exact route wins over the pool and would divert its
// calls); a pool is refused inside a wider live pool of other replicas (the most specific
// suffix wins). Joining a pool is not a conflict. systemID is the binder's.
func (cl *clusterRouter) conflict(a envelope.Address, systemID string) string {
	if a.Host == "" {
		return ""
	}
	others := func(addr string) string {
		for _, id := range cl.dir.Live(addr) {
			if id != systemID {
				where := ""
				if r, ok := cl.dir.Get(id); ok {
					where = " on sentinel " + r.Sentinel
				}
				return id + where
			}
		}
		return ""
	}
	host, pool := strings.CutPrefix(a.Host, "*.")
	if !pool {
		if o := others(a.String()); o != "" {
			return "address " + a.String() + " is bound by " + o
		}
	}
	for h := host; h != ""; {
		if !pool || h != host {
			key := a.Participant + "@*." + h
			if o := others(key); o != "" {
				return "address " + a.String() + " would shadow the live pool " + key + " (" + o + ")"
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

// publishAddresses puts c's logical addresses (pools and exact) in the directory, or takes c
// out of it when it serves none.
func (cl *clusterRouter) publishAddresses(c peer) {
	id := c.ident().systemID
	addrs := cl.routes.addressesOf(c)
	caps := cl.routes.capsOf(c)
	if len(addrs) == 0 && len(caps) == 0 {
		cl.dir.Remove(id)
		return
	}
	st := cluster.ReplicaUp
	if cl.drainingHere != nil && cl.drainingHere(c) {
		st = cluster.ReplicaDraining // a bind while draining must not make it pickable again
	}
	cl.dir.Set(cluster.Replica{ID: id, Pools: addrs, State: st, Caps: caps})
}

// capabilityProvider picks a provider of every capability in caps attached to a peer
// sentinel, up (not draining, its sentinel live), by HRW over key: where a request addressed
// by capabilities goes when no provider here can take it.
func (cl *clusterRouter) capabilityProvider(caps []string, key []byte) *remotePeer {
	var ids []string
	for _, r := range cl.dir.All() {
		if r.Sentinel == cl.self || r.State != cluster.ReplicaUp || len(r.Caps) == 0 {
			continue
		}
		all := true
		for _, c := range caps {
			if !slices.Contains(r.Caps, c) {
				all = false
				break
			}
		}
		if all {
			ids = append(ids, r.ID)
		}
	}
	id, ok := cluster.Pick(string(key), ids)
	if !ok {
		return nil
	}
	rp, _ := cl.routeTo(id).(*remotePeer)
	return rp
}

// left withdraws a detached replica; its bindings stay for the grace window.
func (cl *clusterRouter) left(c peer) {
	cl.dir.Remove(c.ident().systemID)
}

// track remembers a request forwarded to sentinel, so that its death nacks it.
func (cl *clusterRouter) track(sentinel string, h *envelope.Header) bool {
	if len(h.CorrID) == 0 || len(h.ReplyTo) == 0 || !(h.RType.Has(envelope.RTypeReply) || h.RType.Has(envelope.RTypeStream)) {
		return true
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	m := cl.pending[sentinel]
	if m == nil {
		m = map[string]packedReq{}
		cl.pending[sentinel] = m
	}
	if _, again := m[string(h.CorrID)]; !again && len(m) >= maxRemotePending {
		return false
	}
	m[string(h.CorrID)] = packReq(h)
	return true
}

// answered forgets a request forwarded to sentinel once its reply came back, or for a stream
// its final item, as conn.answered does for a local peer: a stream stays tracked between its
// items, so that the peer sentinel's death in the middle of it nacks the caller at once
// instead of leaving it to its timeout.
func (cl *clusterRouter) answered(sentinel string, corrID, msg []byte) {
	if len(corrID) == 0 {
		return
	}
	cl.mu.Lock()
	if m := cl.pending[sentinel]; len(m) > 0 {
		if p, ok := m[string(corrID)]; ok {
			// An opaque stream's items are sealed: parsing them cannot find the end.
			if !p.stream || (!p.opaque && streamEnded(msg)) {
				delete(m, string(corrID))
			} else {
				p.seen = time.Now().UnixMilli()
				m[string(corrID)] = p
			}
		}
	}
	cl.mu.Unlock()
}

// forgetStaleStreams drops forwarded streams quiet for staleStream (conn.forgetStaleStreams),
// so that streams whose final item is sealed do not fill the table up to maxRemotePending.
func (cl *clusterRouter) forgetStaleStreams(now time.Time) {
	limit := now.Add(-staleStream).UnixMilli()
	cl.mu.Lock()
	for _, m := range cl.pending {
		for k, p := range m {
			if p.stream && p.seen < limit {
				delete(m, k)
			}
		}
	}
	cl.mu.Unlock()
}

func (cl *clusterRouter) untrack(sentinel string, corrID []byte) {
	if len(corrID) == 0 {
		return
	}
	cl.mu.Lock()
	if m := cl.pending[sentinel]; m != nil {
		delete(m, string(corrID))
	}
	cl.mu.Unlock()
}

// peerDown nacks every request forwarded to a sentinel that went down, so at-least-once
// callers re-send on a live route instead of waiting out their timeout.
func (cl *clusterRouter) peerDown(id string) {
	cl.lostWith(id, time.Now()) // cluster_repin.go
	cl.mu.Lock()
	m := cl.pending[id]
	delete(cl.pending, id)
	cl.mu.Unlock()
	if len(m) == 0 {
		return
	}
	// Counted and logged before the nacks go out: a caller that reads the counter after its
	// nack arrives must see it (the nack may be written to its socket before this returns).
	cl.m.peerNacks.Add(float64(len(m)))
	cl.log.Warn("peer sentinel down; requests forwarded to it nacked", "peer_sentinel", id, "nacked", len(m))
	for _, pk := range m {
		p := pk.unpack()
		cl.refuse.nackPending(p, envelope.CodePeerUnreachable, "Route to "+p.to+" lost: sentinel "+id+" is down")
	}
}

// forward publishes an envelope for a peer on another sentinel, one hop.
func (cl *clusterRouter) forward(p *remotePeer, msg []byte, h *envelope.Header) error {
	b := make([]byte, 0, len(p.systemID)+1+len(msg))
	b = append(append(append(b, p.systemID...), '\n'), msg...)
	return cl.bus.Publish(p.sentinel, b)
}

// addressesOf lists the logical addresses c serves: pool keys and exact addresses.
func (t *routeTable) addressesOf(c peer) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for addr, o := range t.exact {
		if o == c && !strings.Contains(addr, "@/") {
			out = append(out, addr)
		}
	}
	for _, bySuffix := range t.pools {
		for _, p := range bySuffix {
			if slices.Contains(p.members, c) {
				out = append(out, p.key)
			}
		}
	}
	slices.Sort(out)
	return out
}

// resolveClustered is resolveWhy for a clustered sentinel past the local exact route: a
// logical address over the cluster's live replica set, then a physical path here or, by its
// first segment, on a peer sentinel.
func (s *Sentinel) resolveClustered(src peer, h *envelope.Header, dest []byte) (peer, resolveReason, bool) {
	at := bytes.LastIndexByte(dest, '@')
	if at < 0 || at == len(dest)-1 {
		return nil, reasonNone, false
	}
	participant, loc := dest[:at], dest[at+1:]
	if loc[0] != '/' {
		host := loc
		if i := bytes.IndexByte(loc, '/'); i >= 0 {
			host = loc[:i]
		}
		return s.cl.resolveLogical(src, h, dest, participant, host)
	}
	c, r := s.resolvePath(loc)
	if c == nil && r == reasonNone {
		if rp := s.cl.resolveRemotePath(loc); rp != nil {
			return rp, reasonNone, false
		}
	}
	return c, r, false
}

// routeRemote forwards src's envelope to a peer on another sentinel (routeOnce's remote leg).
func (s *Sentinel) routeRemote(src *conn, msg []byte, h *envelope.Header, dest []byte, p *remotePeer) string {
	cl := s.cl
	// routeOnce has already cleared a reply's pending entry and applied the rate limits.
	if s.drain.draining() && s.refuseDraining(src, nil, h, dest) {
		return outDraining
	}
	if !cl.track(p.sentinel, h) {
		s.nackOverloaded(src, h, dest, overloadReason(limitPending, string(dest)))
		return outOverloaded
	}
	if err := cl.forward(p, msg, h); err != nil {
		cl.untrack(p.sentinel, h.CorrID)
		src.log.Warn("forward to peer sentinel failed", "peer_sentinel", p.sentinel, "err", err)
		s.dropWith(src, h, dest, envelope.CodePeerUnreachable, "Route to "+string(dest)+" via sentinel "+p.sentinel+" failed")
		return outNoRoute
	}
	src.pause = 0
	s.metrics.routed(h.FrameType)
	return outForwarded
}

// deliverFromPeer delivers an envelope a peer sentinel forwarded: to the replica it names
// (target) or, target empty, to the local child its physical destination names. It never
// publishes it to the bus again, and it does not re-run this sentinel's ingress checks: the
// sending sentinel ran them on the peer that sent it, and the bus admits only the cluster's
// authenticated members.
func (s *Sentinel) deliverFromPeer(from string, target, msg []byte) {
	cl := s.cl
	var h envelope.Header
	if err := envelope.ParseHeader(msg, &h); err != nil {
		cl.refused(busRefusedMalformed, from, err.Error())
		return
	}
	if s.sec != nil && bytes.Equal(h.SID, cl.peerSID(from)) {
		// Originated by the peer sentinel itself (a nack, a SecureClose): vouched for again by
		// this one, as for a KeyAnnounce it re-wraps, so that a node only ever has to trust
		// the sentinel it is attached to (seclayer_cluster.go).
		if msg = s.sec.resignFromPeer(msg, from); msg == nil || envelope.ParseHeader(msg, &h) != nil {
			cl.refused(busRefusedMalformed, from, "peer sentinel's own envelope could not be re-signed")
			return
		}
	}
	if isReplyFrame(&h) {
		// The request it answers was forwarded to from; a stream's stays until its last item.
		cl.answered(from, h.CorrID, msg)
	}
	if s.sec != nil && len(h.FrameAddress) > 0 && string(h.FrameType) == envelope.TypeKeyRequest {
		s.notePeerKeyRequest(from, msg) // so that the answer is re-wrapped back (seclayer_cluster.go)
	}
	if s.opts.ShowEnvelopes {
		s.showEnvelope("Received envelope from sentinel "+from+" 📨", msg)
	}
	var dst *conn
	if len(target) > 0 {
		dst = asConn(s.routes.child(target))
		if dst == nil {
			cl.refused(busRefusedNotAttached, from, "replica not attached here", "replica", string(target), "to", string(h.To))
			s.nackFromPeer(&h, envelope.CodeChildUnreachable, "replica "+string(target)+" is not attached to sentinel "+s.id)
			return
		}
	} else {
		dest := h.To
		at := bytes.LastIndexByte(dest, '@')
		if at < 0 || !bytes.HasPrefix(dest[at+1:], []byte(s.path+"/")) {
			cl.refused(busRefusedNotLocal, from, "destination not under this sentinel's path", "to", string(dest))
			s.nackFromPeer(&h, envelope.CodeNoRoute, "Unroutable to "+string(dest)+" on sentinel "+s.id)
			return
		}
		p, _ := s.resolvePath(dest[at+1:])
		if dst = asConn(p); dst == nil {
			cl.refused(busRefusedNotAttached, from, "no child at the destination path", "to", string(dest))
			s.nackFromPeer(&h, envelope.CodeChildUnreachable, "Unroutable to "+string(dest)+": not attached to sentinel "+s.id)
			return
		}
	}
	if !dst.trackPending(&h) {
		cl.refused(busRefusedOverloaded, from, "pending bound", "replica", dst.systemID)
		s.nackFromPeer(&h, envelope.CodeOverloaded, overloadReason(limitPending, string(h.To)))
		return
	}
	if why := dst.forward(msg, &h, nil); why != wsengine.Accepted {
		dst.untrack(&h)
		cl.refused(busRefusedOverloaded, from, why, "replica", dst.systemID)
		code := envelope.CodeOverloaded
		if why == wsengine.RefusedClosed {
			code = envelope.CodeRouteConnectorClosed
		}
		s.nackFromPeer(&h, code, "Route to "+dst.systemID+" refused: "+why)
		return
	}
	s.metrics.routed(h.FrameType)
}

// nackFromPeer answers a forwarded request that cannot be delivered here (to its replyTo,
// which is on the sending sentinel: the nack goes back over the bus).
func (s *Sentinel) nackFromPeer(h *envelope.Header, code, reason string) {
	s.metrics.nacks.WithLabelValues(code).Inc()
	ft := string(h.FrameType)
	if len(h.ID) == 0 || len(h.ReplyTo) == 0 || len(h.CorrID) == 0 ||
		(ft != envelope.TypeData && ft != envelope.TypeSecureOpen) {
		return
	}
	s.nackPending(pendingReq{id: string(h.ID), traceID: string(h.TraceID), replyTo: string(h.ReplyTo),
		to: string(h.To), frameType: ft, corrID: string(h.CorrID), cid: string(h.FrameCID)}, code, reason)
}

// checkClusterLink refuses a membership the router cannot use.
func (s *Sentinel) checkClusterLink() error {
	l := s.clusterLink
	if l.Store == nil || l.Bus == nil || l.Directory == nil {
		return fmt.Errorf("sentinel: cluster: store, bus and directory are all required")
	}
	if s.opts.ID == "" {
		return fmt.Errorf("sentinel: cluster: a clustered sentinel needs a fixed id (FAME_NODE_ID): it is its cluster id and the first segment of its peers' paths")
	}
	if s.sec != nil && l.Keys == nil {
		return fmt.Errorf("sentinel: cluster: security profile %s needs the cluster's key directory (ClusterLink.Keys): signed envelopes and key requests cross sentinels", s.opts.SecurityProfile)
	}
	return nil
}
