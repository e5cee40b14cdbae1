package sentinel

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// strictSentinel starts a strict-overlay sentinel "sent1" trusting a fresh CA, and returns an
// issuer of node certificates (path, logicals) for a peer's signing key.
func strictSentinel(t *testing.T) (*testSentinel, func(p *signingPeer, path string, logicals []string)) {
	t.Helper()
	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	ts := startSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": "strict-overlay", "FAME_NODE_ID": "sent1",
		"FAME_CA_CERTS": string(auth.RootPEM())})
	issue := func(p *signingPeer, path string, logicals []string) {
		der, err := security.CreateCSR(p.signer.Key, p.id, logicals)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(der)
		csr, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		iss, err := auth.IssueNode(csr, ca.NodeRequest{RequesterID: p.id, PhysicalPath: path, Logicals: logicals})
		if err != nil {
			t.Fatal(err)
		}
		p.x5c = nil
		for _, c := range iss.Chain {
			p.x5c = append(p.x5c, base64.StdEncoding.EncodeToString(c.Raw))
		}
	}
	return ts, issue
}

// TestStrictBindCheckedAgainstCertificate: the logicals a node declares in NodeAttach do not
// widen what its certificate grants.
func TestStrictBindCheckedAgainstCertificate(t *testing.T) {
	ts, issue := strictSentinel(t)
	p := newSigningPeer(t, ts, "agent1")
	issue(p, "/sent1/agent1", []string{"fame.fabric"})
	p.attachSigned("*") // declares everything
	if _, ack := p.bindSigned("math@fame.fabric"); !ack.OK {
		t.Fatalf("granted bind refused: %+v", ack)
	}
	if _, ack := p.bindSigned("math@other.domain"); ack.OK || ack.Code != envelope.CodeUnauthorized {
		t.Fatalf("bind outside the certificate's logicals: %+v", ack)
	}
	if refusalCount(t, ts, refusalBindUnauthorized) != 1 {
		t.Fatal("refusal not counted")
	}
}

// TestStrictSameSPIFFEIDReattach: under strict-overlay a certificate for the same SPIFFE ID is
// no proof of ownership while the holder is alive (a shared replica credential can obtain one
// for any replica's id): a node with a fresh key and certificate for the live holder's path is
// refused SYSTEM_ID_IN_USE, as is a peer replaying the victim's public certificate. Once the
// holder is gone, the fresh node gets the id.
func TestStrictSameSPIFFEIDReattach(t *testing.T) {
	ts, issue := strictSentinel(t)
	old := newSigningPeer(t, ts, "agent1")
	issue(old, "/sent1/agent1", []string{"fame.fabric"})
	old.attachSigned("fame.fabric")

	signedAttach := func(p *signingPeer) *envelope.NodeAttachAck {
		p.path = "/sent1/agent1"
		e := p.newEnv(&envelope.NodeAttach{OriginType: "downstream", SystemID: "agent1", InstanceID: envelope.NewID(),
			AcceptedLogicals: []string{"fame.fabric"}, Keys: p.jwks()})
		p.sendSigned(e, nil)
		return decodeAs[*envelope.NodeAttachAck](t, p.recv())
	}

	thief := newSigningPeer(t, ts, "agent1")
	thief.x5c = old.x5c
	if ack := signedAttach(thief); ack.OK || ack.Code != codeSystemIDInUse {
		t.Fatalf("replayed certificate: %+v", ack)
	}
	again := newSigningPeer(t, ts, "agent1")
	issue(again, "/sent1/agent1", []string{"fame.fabric"})
	if ack := signedAttach(again); ack.OK || ack.Code != codeSystemIDInUse {
		t.Fatalf("fresh certificate for the live holder's SPIFFE ID: %+v", ack)
	}
	if n := refusalCount(t, ts, refusalSystemIDInUse); n != 2 {
		t.Fatalf("system_id_in_use refusals %v, want 2", n)
	}
	if _, ack := old.bindSigned("math@fame.fabric"); !ack.OK {
		t.Fatalf("holder's bind after the refused takeovers: %+v", ack)
	}

	old.ws.Close(websocket.StatusNormalClosure, "crash")
	next := newSigningPeer(t, ts, "agent1")
	issue(next, "/sent1/agent1", []string{"fame.fabric"})
	var ack *envelope.NodeAttachAck
	for i := 0; i < 100; i++ { // the sentinel notices the close asynchronously
		if ack = signedAttach(next); ack.OK {
			break
		}
		next = newSigningPeer(t, ts, "agent1")
		issue(next, "/sent1/agent1", []string{"fame.fabric"})
		time.Sleep(20 * time.Millisecond)
	}
	if !ack.OK {
		t.Fatalf("re-attach after the holder left: %+v", ack)
	}
	if _, ack := next.bindSigned("math@fame.fabric"); !ack.OK {
		t.Fatalf("bind after re-attach: %+v", ack)
	}
}

// TestStrictCertificateWithoutLogicals: a certificate without logicals grants no logical bind
// (fail closed); physical binds under the node's own path stay allowed.
func TestStrictCertificateWithoutLogicals(t *testing.T) {
	ts, issue := strictSentinel(t)
	p := newSigningPeer(t, ts, "client1")
	issue(p, "/sent1/client1", nil)
	p.attachSigned("*")
	if _, ack := p.bindSigned("math@*.fame.fabric"); ack.OK || ack.Code != envelope.CodeUnauthorized {
		t.Fatalf("pool join without certified logicals: %+v", ack)
	}
	if refusalCount(t, ts, refusalBindUnauthorized) != 1 {
		t.Fatal("refusal not counted")
	}
	if _, ack := p.bindSigned("inbox@/sent1/client1"); !ack.OK {
		t.Fatalf("physical bind under its own path: %+v", ack)
	}
}
