package e2e

import (
	"context"
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

// TestAttackKeyPoisonOverlay: a signed overlay peer routes KeyAnnounce frames to a client and
// a replica, for the replica's path and reusing the replica's kid (learnt from a reply it got
// from the replica). Before the fix the client stored them and every later reply of the
// replica failed verification (the calls timed out). Now each is refused with the nack
// KEY_ANNOUNCE_REFUSED to the announcer, counted by the node, and the replica keeps serving.
func TestAttackKeyPoisonOverlay(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay"})
	ov := func(c *node.Config) { c.SecurityProfile = "overlay"; c.KeyRequestTimeout = 500 * time.Millisecond }
	replica := f.startReplica("replica1", "*.fame.fabric", nil, ov)
	ccfg := f.nodeConfig()
	ov(&ccfg)
	client := f.connect(ccfg)
	keyPoison(t, f, replica, client, newSignedRaw(t, f, "evil"), false)
}

// TestAttackKeyPoisonStrictOverlay: the same under strict-overlay, where every party holds a
// certificate from the fabric's CA (the attacker too: it is an admitted node), plus an
// announce of the attacker's own key without its certificate.
func TestAttackKeyPoisonStrictOverlay(t *testing.T) {
	cas := newTestCA(t, "sent1")
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "strict-overlay", "FAME_NODE_ID": "sent1",
		"FAME_CA_CERTS": string(cas.auth.RootPEM())})
	replica := f.startReplica("replica1", "*.fame.fabric", nil, func(c *node.Config) {
		cas.strict(c, "replica1")
		c.KeyRequestTimeout = 500 * time.Millisecond
	})
	ccfg := f.nodeConfig()
	cas.strict(&ccfg, "client1")
	ccfg.KeyRequestTimeout = 500 * time.Millisecond
	client := f.connect(ccfg)
	keyPoison(t, f, replica, client, newSignedRawCert(t, f, "evil", cas.x5c("evil")), true)
}

// keyPoison runs the attack of TestAttackKeyPoisonOverlay with evil, an attached signed raw
// peer.
func keyPoison(t *testing.T, f *fabric, replica, client *node.Node, evil *signedRaw, strict bool) {
	t.Helper()
	if who := whoami(t, client); who != "replica1" {
		t.Fatalf("whoami %q", who)
	}
	// Learn the replica's kid the way any caller can: from the signature on its reply.
	evil.request(mathagent.Address, "whoami")
	reply := evil.next(envelope.TypeData, 10*time.Second)
	if reply == nil {
		t.Fatal("no reply from the replica")
	}
	sec, err := security.ParseSec(reply.Sec)
	if err != nil || sec == nil || sec.Sig == nil {
		t.Fatalf("unsigned reply: %v", err)
	}
	victimKid, victimPath := sec.Sig.Kid, replica.AssignedPath()

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged := func(kid string) []json.RawMessage {
		b, _ := json.Marshal(security.SigningJWK(other.Public().(ed25519.PublicKey), kid))
		return []json.RawMessage{b}
	}
	announce := func(target *node.Node, path string, keys []json.RawMessage) string {
		e := evil.frame(&envelope.KeyAnnounce{PhysicalPath: path, Keys: keys, Created: envelope.Now()})
		e.To, e.ReplyTo = "__sys__@"+target.AssignedPath(), "__sys__@"+evil.path
		evil.signed(e)
		return nackCode(t, evil.next(envelope.TypeDeliveryAck, 10*time.Second))
	}
	cases := []struct {
		name   string
		target *node.Node
		path   string
		keys   []json.RawMessage
		reason string
	}{
		{"replica's path and kid, to the client", client, victimPath, forged(victimKid), node.RefusedKeyAnnounceForeignPath},
		{"own path, replica's kid, to the client", client, evil.path, forged(victimKid), node.RefusedKeyAnnounceKidTaken},
		{"replica's path, new kid, to the client", client, victimPath, forged(envelope.NewID()), node.RefusedKeyAnnounceForeignPath},
		{"client's path, to the replica", replica, client.AssignedPath(), forged(envelope.NewID()), node.RefusedKeyAnnounceForeignPath},
	}
	if strict {
		// Its own key, without the certificate that binds it to its path.
		own, _ := json.Marshal(security.SigningJWK(evil.signer.Key.Public().(ed25519.PublicKey), evil.signer.Kid))
		cases = append(cases, struct {
			name   string
			target *node.Node
			path   string
			keys   []json.RawMessage
			reason string
		}{"own key without x5c, to the client", client, evil.path, []json.RawMessage{own}, node.RefusedKeyAnnounceNoCert})
	}
	for _, c := range cases {
		before := c.target.Refusals()[c.reason]
		if code := announce(c.target, c.path, c.keys); code != node.CodeKeyAnnounceRefused {
			t.Fatalf("%s: nack %q, want %q", c.name, code, node.CodeKeyAnnounceRefused)
		}
		if got := c.target.Refusals()[c.reason]; got != before+1 {
			t.Fatalf("%s: %s refusals %d, want %d", c.name, c.reason, got, before+1)
		}
	}
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var who string
		err := client.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who)
		cancel()
		if err != nil || who != "replica1" {
			t.Fatalf("call %d after the poisoning attempts: %q, %v", i, who, err)
		}
	}
}
