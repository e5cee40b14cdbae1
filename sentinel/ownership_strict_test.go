package sentinel

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

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
	t.Setenv("FAME_CA_CERTS", string(auth.RootPEM()))
	ts := startSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": "strict-overlay", "FAME_NODE_ID": "sent1"})
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

// TestStrictSameSPIFFEIDReattach: under strict-overlay a node that restarted with a new key
// and a new certificate for the same path (same SPIFFE ID) proves ownership by signing its
// NodeAttach with the certified key, even while the old connection still answers pings. A
// peer that only replays the victim's public certificate cannot sign and is refused.
func TestStrictSameSPIFFEIDReattach(t *testing.T) {
	ts, issue := strictSentinel(t)
	old := newSigningPeer(t, ts, "agent1")
	issue(old, "/sent1/agent1", nil)
	old.attachSigned("fame.fabric")

	signedAttach := func(p *signingPeer) *envelope.NodeAttachAck {
		p.path = "/sent1/agent1"
		e := p.newEnv(&envelope.NodeAttach{OriginType: "downstream", SystemID: "agent1", InstanceID: envelope.NewID(),
			AcceptedLogicals: []string{"fame.fabric"}, Keys: p.jwks()})
		p.sendSigned(e, nil)
		return decodeAs[*envelope.NodeAttachAck](t, p.recv())
	}

	// Replaying the victim's certificate (public) with one's own key: the chain's leaf key is
	// not the signer, so no proof; the holder is alive, so refused.
	thief := newSigningPeer(t, ts, "agent1")
	thief.x5c = old.x5c
	if ack := signedAttach(thief); ack.OK || ack.Code != codeSystemIDInUse {
		t.Fatalf("replayed certificate: %+v", ack)
	}

	again := newSigningPeer(t, ts, "agent1")
	issue(again, "/sent1/agent1", nil)
	if ack := signedAttach(again); !ack.OK {
		t.Fatalf("owner with a fresh certificate refused: %+v", ack)
	}
	old.expectClosed(t, websocket.StatusNormalClosure, "replaced")
	if _, ack := again.bindSigned("math@fame.fabric"); !ack.OK {
		t.Fatalf("bind after re-attach: %+v", ack)
	}
}
