package sentinel

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/stickiness"
)

// memKeys is the cluster's key directory in memory: what one sentinel publishes reaches the
// others' watchers, at once or (held) when the test releases it.
type memKeys struct {
	mu       sync.Mutex
	entries  map[string]cluster.SharedKey
	watchers map[string][]func(cluster.SharedKey, bool)
	hold     bool
	held     []func()
}

func newMemKeys() *memKeys {
	return &memKeys{entries: map[string]cluster.SharedKey{}, watchers: map[string][]func(cluster.SharedKey, bool){}}
}

type memKeyView struct {
	m    *memKeys
	self string
}

func (v *memKeyView) Publish(k cluster.SharedKey) error {
	k.Sentinel = v.self
	if err := k.Check(); err != nil {
		return err
	}
	v.m.mu.Lock()
	v.m.entries[k.Kid] = k
	v.m.mu.Unlock()
	v.m.deliver(v.self, k, false)
	return nil
}

func (v *memKeyView) Withdraw(kid string) {
	v.m.mu.Lock()
	k, ok := v.m.entries[kid]
	delete(v.m.entries, kid)
	v.m.mu.Unlock()
	if ok {
		v.m.deliver(v.self, k, true)
	}
}

func (v *memKeyView) Watch(fn func(cluster.SharedKey, bool)) {
	v.m.mu.Lock()
	v.m.watchers[v.self] = append(v.m.watchers[v.self], fn)
	v.m.mu.Unlock()
}

// deliver runs the other sentinels' watchers on a goroutine of their own, as the KV watch does.
func (m *memKeys) deliver(from string, k cluster.SharedKey, deleted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, fns := range m.watchers {
		if id == from {
			continue
		}
		for _, fn := range fns {
			run := func() { fn(k, deleted) }
			if m.hold {
				m.held = append(m.held, run)
			} else {
				go run()
			}
		}
	}
}

func (m *memKeys) setHold(h bool) {
	m.mu.Lock()
	m.hold = h
	held := m.held
	m.held = nil
	m.mu.Unlock()
	for _, run := range held {
		go run()
	}
}

func (m *memKeys) get(kid string) (cluster.SharedKey, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.entries[kid]
	return k, ok
}

// startSignedClustered starts sentinel id under overlay as a member of m with key directory k.
func startSignedClustered(t *testing.T, m *memCluster, k *memKeys, id string) *testSentinel {
	t.Helper()
	tbl, err := stickiness.NewTable(stickiness.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return startSentinel(t, map[string]string{"FAME_NODE_ID": id, "FAME_SECURITY_PROFILE": "overlay"},
		WithCluster(ClusterLink{Store: cluster.NewLocalStore(tbl, id), Bus: &memBus{m, id}, Directory: &memDir{m, id},
			Keys: &memKeyView{k, id}}))
}

// TestClusterKeysFollowTheirOwner: the keys a node presents at attach to s0 are published
// with their owner (s0, its path), learnt by s1 (which answers KeyRequest{kid} for them), and
// withdrawn everywhere when the node detaches; each sentinel's own keys are published too.
func TestClusterKeysFollowTheirOwner(t *testing.T) {
	m, keys := newMemCluster(), newMemKeys()
	s0, s1 := startSignedClustered(t, m, keys, "s0"), startSignedClustered(t, m, keys, "s1")
	if k, ok := keys.get(s0.sec.signer.Kid); !ok || k.Sentinel != "s0" || k.Path != "/s0" {
		t.Fatalf("s0's own signing key in the directory: %+v %v", k, ok)
	}
	agent := newSigningPeer(t, s0, "agent")
	agent.attachSigned()
	k, ok := keys.get(agent.signer.Kid)
	if !ok || k.Sentinel != "s0" || k.Path != "/s0/agent" {
		t.Fatalf("agent key in the directory: %+v %v", k, ok)
	}
	if _, ok := keys.get(agent.encKid); !ok {
		t.Fatal("agent encryption key not published")
	}
	waitClustered(t, "s1 learning the agent's key", func() bool {
		sk, ok := s1.sec.keys.Get(agent.signer.Kid)
		return ok && sk.PhysicalPath == "/s0/agent"
	})
	client := newSigningPeer(t, s1, "client")
	client.attachSigned()
	req := client.newEnv(&envelope.KeyRequest{Kid: agent.signer.Kid, PhysicalPath: client.path})
	client.sendSigned(req, nil)
	ka := decodeAs[*envelope.KeyAnnounce](t, client.recv())
	if ka.PhysicalPath != "/s0/agent" || len(ka.Keys) != 1 {
		t.Fatalf("s1 announced %+v", ka)
	}
	if n := counterValue(t, s1.sec.cl.events.WithLabelValues("served_peer_key")); n != 1 {
		t.Fatalf("served_peer_key %v, want 1", n)
	}
	_ = agent.ws.CloseNow()
	waitClustered(t, "the agent's keys withdrawn and forgotten by s1", func() bool {
		_, inDir := keys.get(agent.signer.Kid)
		_, onS1 := s1.sec.keys.Get(agent.signer.Kid)
		return !inDir && !onS1
	})
}

// TestClusterKeyRequestWaitsForPeerKey: a KeyRequest{kid} for a key a peer has published but
// whose delivery is still under way is answered once it lands, not with KEY_NOT_FOUND; one
// for a kid nobody publishes gets KEY_NOT_FOUND after the wait.
func TestClusterKeyRequestWaitsForPeerKey(t *testing.T) {
	m, keys := newMemCluster(), newMemKeys()
	s0, s1 := startSignedClustered(t, m, keys, "s0"), startSignedClustered(t, m, keys, "s1")
	_ = s0
	client := newSigningPeer(t, s1, "client")
	client.attachSigned()
	keys.setHold(true)
	agent := newSigningPeer(t, s0, "agent")
	agent.attachSigned()
	req := client.newEnv(&envelope.KeyRequest{Kid: agent.signer.Kid, PhysicalPath: client.path})
	client.sendSigned(req, nil)
	expectNothing(t, client.rawPeer, 200*time.Millisecond)
	keys.setHold(false)
	got := client.recv()
	if got.CorrID != req.CorrID {
		t.Fatalf("answer not correlated: %s", got.Frame)
	}
	if ka := decodeAs[*envelope.KeyAnnounce](t, got); ka.PhysicalPath != "/s0/agent" {
		t.Fatalf("announced %+v", ka)
	}
	if n := counterValue(t, s1.sec.cl.events.WithLabelValues("waited")); n != 1 {
		t.Fatalf("waited %v, want 1", n)
	}
	unknown := client.newEnv(&envelope.KeyRequest{Kid: "nobodysKid00000", PhysicalPath: client.path})
	client.sendSigned(unknown, nil)
	if da := decodeAs[*envelope.DeliveryAck](t, client.recv()); da.OK || da.Code != codeKeyNotFound || da.RefID != unknown.ID {
		t.Fatalf("unknown kid: %+v, want KEY_NOT_FOUND", da)
	}
}

// TestClusterPeerCannotTakeLocalKid: a peer sentinel vouching for a kid a node attached here
// owns does not replace it (conflict, counted); the local node's key stays.
func TestClusterPeerCannotTakeLocalKid(t *testing.T) {
	m, keys := newMemCluster(), newMemKeys()
	s0 := startSignedClustered(t, m, keys, "s0")
	agent := newSigningPeer(t, s0, "agent")
	agent.attachSigned()
	forged := security.SigningJWK(newSigner(t).Key.Public().(ed25519.PublicKey), agent.signer.Kid)
	raw, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	s0.sec.applyShared(cluster.SharedKey{Kid: agent.signer.Kid, Sentinel: "s9", Path: "/s9/evil", JWK: raw}, false)
	if sk, _ := s0.sec.keys.Get(agent.signer.Kid); sk == nil || sk.PhysicalPath != agent.path {
		t.Fatalf("the local kid now belongs to %v", sk)
	}
	if n := counterValue(t, s0.sec.cl.events.WithLabelValues("conflict")); n != 1 {
		t.Fatalf("conflict %v, want 1", n)
	}
}

// TestClusterKeyRequestByAddressAcrossSentinels: a client on s0 asks KeyRequest{address} for
// an address bound by an agent on s1. The request crosses the bus to the agent; its
// KeyAnnounce is re-wrapped by s1 (which checked that the agent serves the address), sent
// back to s0 and delivered to the client signed by s0, its own sentinel. An answer from a
// node that does not serve the address is not vouched for.
func TestClusterKeyRequestByAddressAcrossSentinels(t *testing.T) {
	m, keys := newMemCluster(), newMemKeys()
	s0, s1 := startSignedClustered(t, m, keys, "s0"), startSignedClustered(t, m, keys, "s1")
	agent := newSigningPeer(t, s1, "agent1")
	agent.attachSigned("fame.fabric")
	if _, ack := agent.bindSigned("math@fame.fabric"); !ack.OK {
		t.Fatalf("bind refused: %+v", ack)
	}
	mallory := newSigningPeer(t, s1, "mallory")
	mallory.attachSigned("*")
	client := newSigningPeer(t, s0, "client1")
	s0Key := sentinelKey(t, client.attachSigned("*"))

	req := client.newEnv(&envelope.KeyRequest{Address: "math@fame.fabric", PhysicalPath: client.path})
	client.sendSigned(req, nil)
	fwd := agent.recv()
	if fwd.ID != req.ID || string(fwd.Sec) != string(req.Sec) {
		t.Fatalf("KeyRequest by address not forwarded to the binder unchanged: %s", fwd.Frame)
	}
	fake := mallory.newEnv(&envelope.KeyAnnounce{PhysicalPath: mallory.path, Keys: mallory.jwks()[1:]})
	fake.CorrID, fake.TraceID = req.CorrID, req.TraceID
	mallory.sendSigned(fake, nil)
	expectNothing(t, client.rawPeer, 200*time.Millisecond)

	ans := agent.newEnv(&envelope.KeyAnnounce{Address: "math@fame.fabric", PhysicalPath: agent.path, Keys: agent.jwks()[1:], Created: envelope.Now()})
	ans.CorrID, ans.TraceID = req.CorrID, req.TraceID
	agent.sendSigned(ans, nil)
	got := client.recv()
	expectSignedBy(t, s0, got, s0Key)
	if got.CorrID != req.CorrID || got.TraceID != req.TraceID {
		t.Fatalf("re-wrap not correlated: corr %s trace %s", got.CorrID, got.TraceID)
	}
	if ka := decodeAs[*envelope.KeyAnnounce](t, got); ka.PhysicalPath != agent.path || len(ka.Keys) != 1 {
		t.Fatalf("re-wrapped frame: %s", got.Frame)
	}
}

// TestClusterSameNodeMoves: a node attached to s0 (its keys known cluster-wide) re-attaching
// to s1 with the same system id and signing key while s0 still lists it is the node moving:
// accepted, and s1 now vouches for its kid. Another key under that system id is refused
// SYSTEM_ID_IN_USE.
func TestClusterSameNodeMoves(t *testing.T) {
	m, keys := newMemCluster(), newMemKeys()
	s0, s1 := startSignedClustered(t, m, keys, "s0"), startSignedClustered(t, m, keys, "s1")
	agent := newSigningPeer(t, s0, "agent1")
	agent.attachSigned("fame.fabric")
	if _, ack := agent.bindSigned("math@*.fame.fabric"); !ack.OK {
		t.Fatalf("bind refused: %+v", ack)
	}
	waitClustered(t, "s1 learning the agent's key", func() bool { _, ok := s1.sec.keys.Get(agent.signer.Kid); return ok })

	impostor := newSigningPeer(t, s1, "agent1")
	impostor.sendAttach("fame.fabric")
	if ack := decodeAs[*envelope.NodeAttachAck](t, impostor.recv()); ack.OK || ack.Code != codeSystemIDInUse {
		t.Fatalf("another key as agent1 on s1: %+v, want SYSTEM_ID_IN_USE", ack)
	}

	moved := &signingPeer{rawPeer: dialRaw(t, s1, "agent1"), signer: agent.signer, encKid: envelope.NewID()}
	moved.attachSigned("fame.fabric")
	if k, ok := keys.get(agent.signer.Kid); !ok || k.Sentinel != "s1" || k.Path != "/s1/agent1" {
		t.Fatalf("after the move the directory has %+v %v, want s1's", k, ok)
	}
	_ = s0
}

// TestClusterStrictPeerKeysValidated: under strict-overlay a sentinel checks every key a peer
// vouches for as it checks its own nodes' keys: the x5c chain against its own trust bundle
// and the certificate's sid against the path. A signing key without x5c, a certificate for
// another path, or one from another CA is refused (invalid, counted); a good one is learnt.
func TestClusterStrictPeerKeysValidated(t *testing.T) {
	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	m, keys := newMemCluster(), newMemKeys()
	tbl, err := stickiness.NewTable(stickiness.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s0 := startSentinel(t, map[string]string{"FAME_NODE_ID": "s0", "FAME_SECURITY_PROFILE": "strict-overlay",
		"FAME_CA_CERTS": string(auth.RootPEM())},
		WithCluster(ClusterLink{Store: cluster.NewLocalStore(tbl, "s0"), Bus: &memBus{m, "s0"}, Directory: &memDir{m, "s0"},
			Keys: &memKeyView{keys, "s0"}}))
	key := func(by *ca.Authority, certPath string) (string, json.RawMessage) {
		s := newSigner(t)
		der, err := security.CreateCSR(s.Key, "r", nil)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(der)
		csr, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		j := security.SigningJWK(s.Key.Public().(ed25519.PublicKey), s.Kid)
		if by != nil {
			iss, err := by.IssueNode(csr, ca.NodeRequest{RequesterID: "r", PhysicalPath: certPath})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range iss.Chain {
				j.X5C = append(j.X5C, base64.StdEncoding.EncodeToString(c.Raw))
			}
		}
		return s.Kid, mustJSON(t, j)
	}
	invalid := func() float64 { return counterValue(t, s0.sec.cl.events.WithLabelValues("invalid")) }
	for _, tc := range []struct {
		name       string
		by         *ca.Authority
		cert, path string
		ok         bool
	}{
		{"certified for its path", auth, "/s9/r", "/s9/r", true},
		{"no x5c", nil, "", "/s9/q", false},
		{"certificate for another path", auth, "/s9/r2", "/s9/other", false},
		{"another CA", rogue, "/s9/x", "/s9/x", false},
	} {
		before := invalid()
		kid, raw := key(tc.by, tc.cert)
		s0.sec.applyShared(cluster.SharedKey{Kid: kid, Sentinel: "s9", Path: tc.path, JWK: raw}, false)
		_, stored := s0.sec.keys.Get(kid)
		if stored != tc.ok || (invalid() == before) != tc.ok {
			t.Errorf("%s: stored %v, invalid %v -> %v; want stored %v", tc.name, stored, before, invalid(), tc.ok)
		}
	}
}
