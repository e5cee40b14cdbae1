package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/security"
)

// TestAttackClusterKidOverlay: two clustered sentinels under overlay, the victim replica r1 on
// s1. A raw signed peer on s0 learns r1's kid from the signature of a reply r1 sent it, then
// tries to take that kid over on s0, where r1 is not attached: by KeyAnnounce for its own
// path (KEY_ANNOUNCE_REFUSED), and a second raw peer by presenting it in its NodeAttach keys
// (KID_IN_USE); each refusal is counted (fame_security_refusals_total{reason=
// "kid_owned_on_peer"}). It also tries to bind math@fame.fabric, which would shadow r1's pool
// (BIND_CONFLICT). Had a claim passed, s0 would serve the attacker's key for r1's kid and
// every reply of r1 to a client on s0 would fail verification; a fresh SDK client on s0
// (which must ask s0 for r1's key) then makes 10 calls, all answered by r1.
func TestAttackClusterKidOverlay(t *testing.T) {
	cf := startClusterSpec(t, clusterSpec{n: 2, grace: "2s", node: overlayClusterYAML})
	cf.procs[1].startReplica("r1", "*.fame.fabric", nil, overlayNode)
	cf.waitReplicas(1)
	clusterKidAttack(t, cf, func(id string) *signedRaw { return newSignedRaw(t, cf.procs[0].fabric, id) },
		func(priv ed25519.PrivateKey, kid string) security.JWK {
			return security.SigningJWK(priv.Public().(ed25519.PublicKey), kid)
		}, overlayNode)
}

// TestAttackClusterKidStrictOverlay: the same under strict-overlay, every party (the attackers
// too) holding a certificate of the fabric's CA for its own path.
func TestAttackClusterKidStrictOverlay(t *testing.T) {
	root := newTestCA(t, "s0")
	cf := startClusterSpec(t, clusterSpec{n: 2, grace: "2s", node: strictClusterYAML,
		env: func(int) map[string]string { return map[string]string{"FAME_CA_CERTS": string(root.auth.RootPEM())} }})
	on := func(sent string) *testCA { return &testCA{t: t, auth: root.auth, sent: sent} }
	cf.procs[1].startReplica("r1", "*.fame.fabric", nil, func(c *node.Config) { on("s1").strict(c, "r1") })
	cf.waitReplicas(1)
	clusterKidAttack(t, cf, func(id string) *signedRaw { return newSignedRawCert(t, cf.procs[0].fabric, id, on("s0").x5c(id)) },
		func(priv ed25519.PrivateKey, kid string) security.JWK {
			j := security.SigningJWK(priv.Public().(ed25519.PublicKey), kid)
			j.X5C = on("s0").x5c("evil2")(priv)
			return j
		}, func(c *node.Config) { on("s0").strict(c, c.SystemID) })
}

func clusterKidAttack(t *testing.T, cf *clusterFixture, attacker func(id string) *signedRaw,
	jwkFor func(priv ed25519.PrivateKey, kid string) security.JWK, clientMod func(*node.Config)) {
	t.Helper()
	s0 := cf.procs[0]
	evil := attacker("evil")
	evil.request(mathagent.Address, "whoami")
	reply := evil.next(envelope.TypeData, 10*time.Second)
	if reply == nil {
		t.Fatal("no reply from the victim replica")
	}
	sec, err := security.ParseSec(reply.Sec)
	if err != nil || sec == nil || sec.Sig == nil {
		t.Fatalf("unsigned reply: %v", err)
	}
	victimKid := sec.Sig.Kid

	// 1. KeyAnnounce of the victim's kid (with the attacker's key) for the attacker's own path.
	before := s0.refusals(t, "kid_owned_on_peer")
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	j := jwkFor(other, victimKid)
	raw, _ := json.Marshal(j)
	e := evil.frame(&envelope.KeyAnnounce{PhysicalPath: evil.path, Keys: []json.RawMessage{raw}, Created: envelope.Now()})
	e.ReplyTo = "__sys__@" + evil.path
	evil.signed(e)
	if code := nackCode(t, evil.next(envelope.TypeDeliveryAck, 10*time.Second)); code != "KEY_ANNOUNCE_REFUSED" {
		t.Fatalf("KeyAnnounce of the victim's kid: nack %q, want KEY_ANNOUNCE_REFUSED", code)
	}
	if got := s0.refusals(t, "kid_owned_on_peer"); got != before+1 {
		t.Fatalf("kid_owned_on_peer refusals %v, want %v", got, before+1)
	}

	// 2. NodeAttach presenting the victim's kid.
	evil2 := dialRaw(t, s0.fabric, "evil2", nil)
	ack := evil2.attachAck(func(na *envelope.NodeAttach) { na.Keys = []json.RawMessage{raw} })
	if ack.OK || ack.Code != "KID_IN_USE" {
		t.Fatalf("attach with the victim's kid: ok %v code %q (%s), want KID_IN_USE", ack.OK, ack.Code, ack.Reason)
	}
	if got := s0.refusals(t, "kid_owned_on_peer"); got != before+2 {
		t.Fatalf("kid_owned_on_peer refusals %v, want %v", got, before+2)
	}

	// 3. An exact bind that would shadow the victim's pool on the other sentinel.
	bindBefore := s0.refusals(t, "bind_conflict")
	be := evil.frame(&envelope.AddressBind{Address: "math@fame.fabric", PhysicalPath: evil.path})
	be.ReplyTo, be.RType = "__sys__@"+evil.path, envelope.RTypeAck
	evil.signed(be)
	got := evil.next(envelope.TypeAddressBindAck, 10*time.Second)
	if got == nil {
		t.Fatal("no AddressBindAck")
	}
	fr, _ := got.DecodeFrame()
	if b := fr.(*envelope.AddressBindAck); b.OK || b.Code != "BIND_CONFLICT" {
		t.Fatalf("bind math@fame.fabric: ok %v code %q, want BIND_CONFLICT", b.OK, b.Code)
	}
	if n := s0.refusals(t, "bind_conflict"); n != bindBefore+1 {
		t.Fatalf("bind_conflict refusals %v, want %v", n, bindBefore+1)
	}

	// The victim still serves a fresh client on s0, which must fetch its key from s0.
	cfg := cf.clientConfig(0, false)
	cfg.SystemID = "victim-client"
	clientMod(&cfg)
	client := s0.connect(cfg)
	servesTen(t, client, "r1")
	if r := client.Refusals(); len(r) != 0 {
		t.Fatalf("client refused: %v", r)
	}
}

// TestAttackClusterSystemIDOverlay: two clustered sentinels under overlay, the victim replica
// r1 on s1. A raw peer on s0 attaches as "r1" with its own signing key: without the cluster-
// wide rule it would be r1 on s0, bind r1's pool, overwrite r1's directory entry, and s0 would
// deliver the calls of r1's sessions to its own local "r1". It is refused SYSTEM_ID_IN_USE
// (fame_security_refusals_total{reason="system_id_in_use"}), and r1 goes on serving a fresh
// client on s0.
func TestAttackClusterSystemIDOverlay(t *testing.T) {
	cf := startClusterSpec(t, clusterSpec{n: 2, grace: "2s", node: overlayClusterYAML})
	cf.procs[1].startReplica("r1", "*.fame.fabric", nil, overlayNode)
	cf.waitReplicas(1)
	s0 := cf.procs[0]
	before := s0.refusals(t, "system_id_in_use")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	raw, _ := json.Marshal(security.SigningJWK(priv.Public().(ed25519.PublicKey), envelope.NewID()))
	evil := dialRaw(t, s0.fabric, "r1", nil)
	ack := evil.attachAck(func(na *envelope.NodeAttach) { na.Keys = []json.RawMessage{raw} }, "*.fame.fabric")
	if ack.OK || ack.Code != "SYSTEM_ID_IN_USE" {
		t.Fatalf("attach as r1 on s0: ok %v code %q (%s), want SYSTEM_ID_IN_USE", ack.OK, ack.Code, ack.Reason)
	}
	if got := s0.refusals(t, "system_id_in_use"); got != before+1 {
		t.Fatalf("system_id_in_use refusals %v, want %v", got, before+1)
	}
	cfg := cf.clientConfig(0, false)
	overlayNode(&cfg)
	servesTen(t, s0.connect(cfg), "r1")
}
