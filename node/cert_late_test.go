package node

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node/admit"
	"github.com/fame-go/fame/security"
)

// renewLate installs a new certificate on n and runs the renewal's re-announce with the
// certificate the sentinel holds for the current link expiring at held.
func renewLate(t *testing.T, n *Node, auth *testAuthority, held time.Time) *link {
	t.Helper()
	n.mu.Lock()
	l := n.cur
	n.mu.Unlock()
	l.certNotAfter.Store(held.UnixNano())
	if n.sec.setCertificate(auth.issueNode(t, n.sec.signer.Key.Public().(ed25519.PublicKey), n.AssignedPath())) == 0 {
		t.Fatal("certificate not installed")
	}
	n.syncKeys(l)
	return l
}

// attachX5C is the x5c of the signing key in the node's last NodeAttach.
func attachX5C(t *testing.T, f *fakeSentinel, n *Node) []string {
	t.Helper()
	att := framesOf(f, n.SystemID(), envelope.TypeNodeAttach)
	fr, err := att[len(att)-1].DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range fr.(*envelope.NodeAttach).Keys {
		j, err := security.ParseJWK(json.RawMessage(raw))
		if err == nil && j.Use == "sig" {
			return j.X5C
		}
	}
	return nil
}

// TestLateRenewalReattaches: a certificate renewed after the one the sentinel holds expired
// cannot be announced (the sentinel verifies the KeyAnnounce with the expired certificate and
// refuses it, and then every envelope of the link: in e2e/TestFullStackRenewal under load,
// 235 of 255 calls failed that way). The node attaches again with the new certificate.
func TestLateRenewalReattaches(t *testing.T) {
	auth := newTestAuthority(t)
	f := overlaySentinel(t)
	_, client := agentAndClient(t, f, overlay(""))
	old := renewLate(t, client, auth, time.Now().Add(-time.Second))
	waitFor(t, "the node attached again", func() bool { return f.attachCount(client.SystemID()) == 2 })
	if old.alive() {
		t.Fatal("the link with the expired certificate still runs")
	}
	if n := len(framesOf(f, client.SystemID(), envelope.TypeKeyAnnounce)); n != 0 {
		t.Fatalf("%d KeyAnnounce sent under the expired certificate, want 0", n)
	}
	if x5c := attachX5C(t, f, client); len(x5c) == 0 {
		t.Fatal("the new NodeAttach carries no certificate")
	}
	if got := client.Refusals()[RefusedCertRenewedLate]; got != 1 {
		t.Fatalf("%s = %d, want 1", RefusedCertRenewedLate, got)
	}
	if sum, err := add(t, client, 2, 3); err != nil || sum != 5 {
		t.Fatalf("add after the re-attach = %d, %v", sum, err)
	}

	// In time, the renewal is announced on the open link.
	cur := renewLate(t, client, auth, time.Now().Add(time.Hour))
	waitFor(t, "KeyAnnounce sent", func() bool { return len(framesOf(f, client.SystemID(), envelope.TypeKeyAnnounce)) == 1 })
	if !cur.alive() || f.attachCount(client.SystemID()) != 2 {
		t.Fatalf("an in-time renewal re-attached (alive %v, attaches %d)", cur.alive(), f.attachCount(client.SystemID()))
	}
}

// TestRenewalForAnotherPlacementReattaches: a renewal whose welcome grant places the node on
// another path (its hello reached another sentinel's welcome service) is not announced on
// the link, whose sentinel would refuse it for its sid: the node attaches again, as the grant
// says, and goes on serving.
func TestRenewalForAnotherPlacementReattaches(t *testing.T) {
	auth := newTestAuthority(t)
	f := overlaySentinel(t)
	_, client := agentAndClient(t, f, overlay(""))
	n := client
	n.mu.Lock()
	old := n.cur
	n.mu.Unlock()
	other := "/other-sentinel/" + client.SystemID()
	chain := auth.issueNode(t, n.sec.signer.Key.Public().(ed25519.PublicKey), other)
	n.onCertificate(&admit.Certificate{Chain: chain, SID: envelope.SecureDigest(other), NotAfter: chain[0].NotAfter})
	waitFor(t, "the node attached again", func() bool { return f.attachCount(client.SystemID()) == 2 })
	if old.alive() {
		t.Fatal("the link of the old placement still runs")
	}
	if k := len(framesOf(f, client.SystemID(), envelope.TypeKeyAnnounce)); k != 0 {
		t.Fatalf("%d KeyAnnounce of a certificate for another path, want 0", k)
	}
	if sum, err := add(t, client, 2, 3); err != nil || sum != 5 {
		t.Fatalf("add after the re-attach = %d, %v", sum, err)
	}

	// A renewal for the path of the link is announced on it, as before.
	n.mu.Lock()
	cur := n.cur
	n.mu.Unlock()
	same := auth.issueNode(t, n.sec.signer.Key.Public().(ed25519.PublicKey), n.AssignedPath())
	n.onCertificate(&admit.Certificate{Chain: same, SID: envelope.SecureDigest(n.AssignedPath()), NotAfter: same[0].NotAfter})
	waitFor(t, "KeyAnnounce sent", func() bool { return len(framesOf(f, client.SystemID(), envelope.TypeKeyAnnounce)) == 1 })
	if !cur.alive() || f.attachCount(client.SystemID()) != 2 {
		t.Fatalf("a renewal for the same path re-attached (alive %v, attaches %d)", cur.alive(), f.attachCount(client.SystemID()))
	}
}
