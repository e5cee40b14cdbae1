package sentinel

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// The signing profiles across a cluster (issue #15, docs/cluster.md "Keys"). Each sentinel is
// the key directory of the nodes attached to it; clustered, the envelopes and key requests of
// a node reach sentinels it is not attached to. So:
//
//   - every key a sentinel vouches for (its attached nodes' keys from NodeAttach and
//     KeyAnnounce, after the checks of register, and its own) is published in the cluster's
//     key directory, and withdrawn when its owner detaches or replaces it;
//   - every sentinel watches the other sentinels' keys into its local key store, under the
//     owner's physical path (/<peer sentinel>/...), re-validated there (x5c against the trust
//     bundle under strict-overlay). Lookups stay local: verification and KeyRequest{kid} never
//     wait on NATS;
//   - a kid registered to a node on a live peer sentinel cannot be claimed here (key
//     poisoning across the cluster): refused with KID_IN_USE at attach, KEY_ANNOUNCE_REFUSED
//     on announce, fame_security_refusals_total{reason="kid_owned_on_peer"};
//   - a KeyRequest{kid} for a key the watch has not delivered yet (a node that attached to a
//     peer a moment ago and called at once: the call crosses the bus faster than the key
//     crosses the KV) waits up to clusterKeyWait for it before KEY_NOT_FOUND.
//
// An envelope a peer sentinel forwards is not verified again here: the sentinel its sender is
// attached to verified it (with the sender's own key, and that the key is the sender's), the
// bus admits only the cluster's authenticated members, and the destination node verifies it
// end to end. Re-verifying would cost a signature check per hop and could only refuse what a
// member forged, and a member can publish keys as well.

// ClusterKeys is what the sentinel uses of the cluster's key directory (cluster.KeyDirectory).
type ClusterKeys interface {
	Publish(k cluster.SharedKey) error
	Withdraw(kid string)
	Watch(fn func(k cluster.SharedKey, deleted bool))
}

// Attach refusal code and refusal reason of a kid owned by a node on a peer sentinel.
const (
	codeKidInUse     = "KID_IN_USE"
	refusalKidOnPeer = "kid_owned_on_peer"
)

// errKidOnPeer marks a registration refused because the kid belongs to a node on a peer.
var errKidOnPeer = errors.New("kid owned on a peer sentinel")

// Bounds of the KeyRequest{kid} waits for keys still in flight across the cluster.
const (
	clusterKeyWait     = 2 * time.Second
	maxClusterKeyWaits = 1024 // kids
	maxWaitsPerKid     = 16
)

// secCluster is the security layer's cluster half; its maps are guarded by secLayer.mu.
type secCluster struct {
	keys      ClusterKeys
	self      string // this sentinel's id
	state     func(sentinel string) cluster.PeerState
	published map[string]map[string]struct{} // local path -> kids published for it
	events    *prometheus.CounterVec         // fame_cluster_keys_total{op}
	waits     kidWaits
}

// joinCluster wires the layer to the cluster's key directory: the sentinel's own keys are
// published and the other sentinels' keys watched into the local store.
func (l *secLayer) joinCluster(keys ClusterKeys, self string, state func(string) cluster.PeerState, reg prometheus.Registerer) error {
	if l == nil {
		return nil
	}
	cl := &secCluster{keys: keys, self: self, state: state, published: map[string]map[string]struct{}{},
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_keys_total",
			Help: "Keys shared over the cluster's key directory, by op (published, withdrawn, learned, forgotten, invalid, conflict, waited, wait_expired, served_peer_key, resigned)."},
			[]string{"op"})}
	cl.waits.m = map[string]*kidWait{}
	if err := reg.Register(cl.events); err != nil {
		return fmt.Errorf("sentinel: cluster key metrics: %w", err)
	}
	l.mu.Lock()
	l.cl = cl
	for _, raw := range l.ownKeys {
		j, err := security.ParseJWK(raw)
		if err != nil {
			l.mu.Unlock()
			return fmt.Errorf("sentinel: own key: %w", err)
		}
		l.publishLocked([]security.JWK{j}, l.path)
	}
	l.mu.Unlock()
	keys.Watch(l.applyShared)
	return nil
}

// remoteOwner returns the peer sentinel whose node owns path, when that sentinel is not down
// ("" for a path of this sentinel, or of a peer declared down: its keys are stale).
func (l *secLayer) remoteOwner(path string) string {
	if envelope.UnderPath(path, l.path) || l.owner[path] != nil || len(path) < 2 {
		return ""
	}
	id, _, _ := strings.Cut(path[1:], "/")
	if id == "" || id == l.cl.self || l.cl.state(id) == cluster.PeerDown {
		return ""
	}
	return id
}

// checkPeerKids refuses keys whose kid a node on a live peer sentinel owns (under l.mu).
func (l *secLayer) checkPeerKids(path string, keys []security.JWK) error {
	if l.cl == nil {
		return nil
	}
	for _, j := range keys {
		if prev, ok := l.keys.Get(j.Kid); ok && prev.PhysicalPath != path {
			if sameNodeMoved(prev, j, path) {
				continue
			}
			if peer := l.remoteOwner(prev.PhysicalPath); peer != "" {
				return fmt.Errorf("%w: %w: kid %s is registered to %s on sentinel %s", errKeys, errKidOnPeer, j.Kid, prev.PhysicalPath, peer)
			}
		}
	}
	return nil
}

// sameNodeMoved reports whether j, claimed for path, is the key prev already registers for the
// same system id on another sentinel: the same public key (kid and x) under the same last
// path segment. A node keeps its keys for its process's life, so this is a node that moved
// sentinels (its old one died, or dropped it) and not a poisoning: a claimant without the
// private key can sign nothing with it, and the system id itself is held by
// claimClusterSystemID.
func sameNodeMoved(prev *security.StoredKey, j security.JWK, path string) bool {
	return prev.JWK.X != "" && prev.JWK.X == j.X && prev.JWK.Use == j.Use && lastSegment(prev.PhysicalPath) == lastSegment(path)
}

func lastSegment(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// claimClusterSystemID is the cluster-wide half of the system id rule (ownership.go has the
// local half), under the signing profiles: a system id whose replica is up on a peer sentinel
// (the cluster's directory) is refused SYSTEM_ID_IN_USE unless the attach presents the signing
// key that sentinel registered for it (the same node moving, see sameNodeMoved). Otherwise a
// node here could take the id, overwrite the replica's directory entry and so receive its
// sessions' calls from every sentinel. Under open and gated there is no key to tell the owner
// by, and the rule is not applied (docs/cluster.md, Not wired yet).
func (s *Sentinel) claimClusterSystemID(c *conn, na *envelope.NodeAttach) error {
	if s.cl == nil || s.sec == nil {
		return nil
	}
	r, ok := s.cl.dir.Get(c.systemID)
	if !ok || r.Sentinel == s.id || r.State == cluster.ReplicaDown {
		return nil
	}
	owner := "/" + r.Sentinel + "/" + c.systemID
	for _, raw := range na.Keys {
		j, err := security.ParseJWK(raw)
		if err != nil || j.Use != "sig" {
			continue
		}
		if k, ok := s.sec.keys.Get(j.Kid); ok && k.PhysicalPath == owner && k.JWK.X == j.X {
			return nil
		}
	}
	reason := fmt.Sprintf("system id %q is attached to sentinel %s and this attach does not present its key", c.systemID, r.Sentinel)
	s.securityRefusal(c, refusalSystemIDInUse, reason, "holder_sentinel", r.Sentinel)
	return &attachRefusal{code: codeSystemIDInUse, reason: reason}
}

// publishLocked publishes the keys just registered for path and withdraws the kids the
// registration replaced (under l.mu).
func (l *secLayer) publishLocked(keys []security.JWK, path string) {
	cl := l.cl
	if cl == nil || !envelope.UnderPath(path, l.path) {
		return // not clustered, or a peer-origin path this sentinel cannot vouch for cluster-wide
	}
	l.withdrawStaleLocked(path)
	set := cl.published[path]
	if set == nil {
		set = map[string]struct{}{}
		cl.published[path] = set
	}
	for _, j := range keys {
		k, ok := l.keys.Get(j.Kid)
		if !ok || k.PhysicalPath != path {
			continue
		}
		raw, err := json.Marshal(k.JWK)
		if err == nil {
			err = cl.keys.Publish(cluster.SharedKey{Kid: j.Kid, Path: path, JWK: raw})
		}
		if err != nil {
			l.log.Warn("key not published to the cluster", "kid", j.Kid, "path", path, "err", err)
			continue
		}
		set[j.Kid] = struct{}{}
		cl.events.WithLabelValues("published").Inc()
	}
}

// withdrawStaleLocked withdraws the kids published for path that the store no longer holds
// for it (replaced, or the path changed hands).
func (l *secLayer) withdrawStaleLocked(path string) {
	cl := l.cl
	for kid := range cl.published[path] {
		if k, ok := l.keys.Get(kid); !ok || k.PhysicalPath != path {
			cl.keys.Withdraw(kid)
			delete(cl.published[path], kid)
			cl.events.WithLabelValues("withdrawn").Inc()
		}
	}
}

// withdrawPathLocked withdraws every kid published for path (its owner detached).
func (l *secLayer) withdrawPathLocked(path string) {
	cl := l.cl
	if cl == nil {
		return
	}
	for kid := range cl.published[path] {
		cl.keys.Withdraw(kid)
		cl.events.WithLabelValues("withdrawn").Inc()
	}
	delete(cl.published, path)
}

// applyShared stores (or forgets) a key another sentinel vouches for. A kid a node attached
// here owns is never replaced by a peer's claim: the local registration keeps it, and the
// conflict is logged and counted.
func (l *secLayer) applyShared(k cluster.SharedKey, deleted bool) {
	l.mu.Lock()
	cl := l.cl
	prev, had := l.keys.Get(k.Kid)
	if deleted {
		if had && prev.PhysicalPath == k.Path && l.owner[k.Path] == nil && !envelope.UnderPath(k.Path, l.path) {
			l.keys.Remove(k.Kid)
			cl.events.WithLabelValues("forgotten").Inc()
		}
		l.mu.Unlock()
		return
	}
	if had && prev.PhysicalPath != k.Path && (envelope.UnderPath(prev.PhysicalPath, l.path) || l.owner[prev.PhysicalPath] != nil) {
		l.mu.Unlock()
		cl.events.WithLabelValues("conflict").Inc()
		l.log.Warn("peer sentinel vouches for a kid a node here owns; the local registration stays",
			"kid", k.Kid, "peer_sentinel", k.Sentinel, "peer_path", k.Path, "local_path", prev.PhysicalPath)
		return
	}
	j, err := security.ParseJWK(k.JWK)
	if err == nil && j.Kid != k.Kid {
		err = fmt.Errorf("JWK kid %q under entry %q", j.Kid, k.Kid)
	}
	if err == nil && l.profile.RequireCertSIDMatch() && j.Use == "sig" && len(j.X5C) == 0 && k.Path != "/"+k.Sentinel {
		// What attach requires of a node here, a node on a peer must have met as well.
		err = fmt.Errorf("signing key without an x5c certificate chain (%s requires one)", l.profile)
	}
	if err == nil {
		// Under strict-overlay Add checks the x5c chain against this sentinel's trust bundle
		// and the certificate's sid against the path: a peer's word is not enough.
		err = l.keys.Add(j, k.Path)
	}
	l.mu.Unlock()
	if err != nil {
		cl.events.WithLabelValues("invalid").Inc()
		l.log.Warn("key from peer sentinel refused", "kid", k.Kid, "peer_sentinel", k.Sentinel, "path", k.Path, "err", err)
		return
	}
	cl.events.WithLabelValues("learned").Inc()
	for _, w := range cl.waits.take(k.Kid) {
		cl.events.WithLabelValues("waited").Inc()
		l.answerKid(w.c, w.e, k.Kid)
	}
}

// awaitKid holds a KeyRequest{kid} the store cannot answer yet, when clustered: the key may be
// on its way from a peer. It reports false when the request must be answered now (not
// clustered, or the waits are full).
func (l *secLayer) awaitKid(c peer, e *envelope.Envelope, kid string) bool {
	cl := l.cl
	if cl == nil {
		return false
	}
	if !cl.waits.add(kid, kidReq{c: c, e: e}, func() { l.kidWaitExpired(kid) }) {
		return false
	}
	// The key may have landed between the lookup and the add.
	if _, ok := l.keys.Get(kid); ok {
		for _, w := range cl.waits.take(kid) {
			l.answerKid(w.c, w.e, kid)
		}
	}
	return true
}

func (l *secLayer) kidWaitExpired(kid string) {
	for _, w := range l.cl.waits.take(kid) {
		l.cl.events.WithLabelValues("wait_expired").Inc()
		l.answerKid(w.c, w.e, kid)
	}
}

// answerKid answers a KeyRequest{kid} from the store: a KeyAnnounce, or KEY_NOT_FOUND.
func (l *secLayer) answerKid(c peer, e *envelope.Envelope, kid string) {
	if c.closed() {
		return
	}
	path, keys, err := l.keys.KeyAnnounceKeys(kid)
	if err != nil {
		l.metrics.nacks.WithLabelValues(codeKeyNotFound).Inc()
		c.logger().Info("KeyRequest for unknown kid", "kid", kid)
		l.sendOwn(c, &envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: codeKeyNotFound,
			Reason: "no key with kid " + kid, RefID: e.ID}}, e, envelope.FlowReset)
		return
	}
	l.noteServed(path)
	l.sendOwn(c, &envelope.KeyAnnounce{PhysicalPath: path, Keys: keys, Created: envelope.Now()}, e, 0)
}

// noteServed counts a KeyRequest{kid} answered with a key a peer sentinel vouches for.
func (l *secLayer) noteServed(path string) {
	if l.cl != nil && !envelope.UnderPath(path, l.path) {
		l.cl.events.WithLabelValues("served_peer_key").Inc()
	}
}

// kidWaits are the KeyRequests waiting for a kid, each kid with one timer.
type kidWaits struct {
	mu sync.Mutex
	m  map[string]*kidWait
}

type kidWait struct {
	reqs  []kidReq
	timer *time.Timer
}

type kidReq struct {
	c peer
	e *envelope.Envelope
}

// add queues r for kid; expire runs (once, on its own goroutine) when the wait times out.
func (w *kidWaits) add(kid string, r kidReq, expire func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	kw := w.m[kid]
	if kw == nil {
		if len(w.m) >= maxClusterKeyWaits {
			return false
		}
		kw = &kidWait{timer: time.AfterFunc(clusterKeyWait, expire)}
		w.m[kid] = kw
	}
	if len(kw.reqs) >= maxWaitsPerKid {
		return false
	}
	kw.reqs = append(kw.reqs, r)
	return true
}

// take removes and returns kid's waiting requests.
func (w *kidWaits) take(kid string) []kidReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	kw := w.m[kid]
	if kw == nil {
		return nil
	}
	kw.timer.Stop()
	delete(w.m, kid)
	return kw.reqs
}

// resignFromPeer re-signs an envelope a peer sentinel originated (its sid), for delivery to a
// node attached here: the new sid and signature are this sentinel's. nil when it does not
// decode or cannot be signed.
func (l *secLayer) resignFromPeer(msg []byte, from string) []byte {
	e, err := envelope.Decode(msg)
	if err != nil {
		l.log.Warn("peer sentinel's envelope does not decode", "peer_sentinel", from, "err", err)
		return nil
	}
	e.SID, e.Sec = l.sid, nil
	if err := l.signer.Sign(e); err != nil {
		l.log.Warn("peer sentinel's envelope not re-signed", "peer_sentinel", from, "frame", e.FrameType(), "err", err)
		return nil
	}
	out, err := e.Marshal()
	if err != nil {
		return nil
	}
	if l.cl != nil {
		l.cl.events.WithLabelValues("resigned").Inc()
	}
	return out
}

// notePeerKeyRequest remembers the requester of a KeyRequest{address} a peer sentinel
// forwarded here, so that the KeyAnnounce the node it reaches answers with is re-wrapped
// (keyAnnounce, rewrap) and published back to that sentinel, which delivers it by path. The
// requester's path is the frame's, and must be under the forwarding sentinel: the answer
// carries a public key signed by this sentinel, so at worst it reaches another node there.
func (s *Sentinel) notePeerKeyRequest(from string, msg []byte) {
	e, err := envelope.Decode(msg)
	if err != nil || e.CorrID == "" {
		return
	}
	f, err := e.DecodeFrame()
	kr, ok := f.(*envelope.KeyRequest)
	if err != nil || !ok || kr.Address == "" {
		return
	}
	root := "/" + from
	if kr.PhysicalPath == root || !envelope.UnderPath(kr.PhysicalPath, root) {
		s.cl.refused(busRefusedMalformed, from, "KeyRequest requester path not under the forwarding sentinel",
			"requester_path", kr.PhysicalPath)
		return
	}
	p := &remotePeer{sentinel: from, cl: s.cl}
	p.origin, p.path, p.sid = "cluster", kr.PhysicalPath, envelope.SecureDigest(kr.PhysicalPath)
	s.sec.corr.put(e.CorrID, p, kr.Address)
}
