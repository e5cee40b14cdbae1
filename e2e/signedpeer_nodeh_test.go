package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/security"
)

// signedRaw is a raw peer with an overlay identity: it attaches with its own signing key and
// signs what it sends, as any overlay node can. The attack is in the bytes it chooses.
type signedRaw struct {
	*rawPeer
	signer *security.Signer
}

func newSignedRaw(t *testing.T, f *fabric, id string) *signedRaw {
	return newSignedRawCert(t, f, id, nil)
}

// newSignedRawCert is newSignedRaw whose signing key carries the x5c chain cert returns for
// it (strict-overlay); cert may be nil.
func newSignedRawCert(t *testing.T, f *fabric, id string, cert func(ed25519.PrivateKey) []string) *signedRaw {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &signedRaw{rawPeer: dialRaw(t, f, id, nil), signer: &security.Signer{Key: priv, Kid: envelope.NewID()}}
	j := security.SigningJWK(priv.Public().(ed25519.PublicKey), p.signer.Kid)
	if cert != nil {
		j.X5C = cert(priv)
	}
	sig, _ := json.Marshal(j)
	ack := p.attachAck(func(na *envelope.NodeAttach) { na.Keys = []json.RawMessage{sig} })
	if !ack.OK {
		t.Fatalf("%s: attach refused: %+v", id, ack)
	}
	return p
}

// signed stamps, signs and sends e; it returns the bytes sent (for replays).
func (p *signedRaw) signed(e *envelope.Envelope) []byte {
	p.t.Helper()
	if e.FlowID == "" {
		e.FlowID = p.flow
	}
	e.SeqID = p.seq
	p.seq++
	if e.SID == "" {
		e.SID = envelope.SecureDigest(p.path)
	}
	if err := p.signer.Sign(e); err != nil {
		p.t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.sendRaw(b); err != nil {
		p.t.Fatalf("%s: send: %v", p.id, err)
	}
	return b
}

func (p *signedRaw) frame(fr envelope.Frame) *envelope.Envelope {
	p.t.Helper()
	e, err := envelope.New(fr)
	if err != nil {
		p.t.Fatal(err)
	}
	e.TraceID, e.CorrID = envelope.NewID(), envelope.NewID()
	return e
}

// request sends a signed JSON-RPC request and returns its bytes.
func (p *signedRaw) request(to, method string) []byte {
	e := p.frame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"` + method + `","params":{}}`)})
	e.To, e.ReplyTo, e.RType = to, "__rpc__x@"+p.path, envelope.RTypeReply
	return p.signed(e)
}

// next returns the next envelope of type typ within d (others are skipped), or nil.
func (p *rawPeer) next(typ string, d time.Duration) *envelope.Envelope {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		e, err := p.read(left)
		if err != nil {
			return nil
		}
		if e.FrameType() == typ {
			return e
		}
	}
}

func nackCode(t *testing.T, e *envelope.Envelope) string {
	t.Helper()
	if e == nil {
		t.Fatal("no DeliveryAck")
	}
	fr, err := e.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	a := fr.(*envelope.DeliveryAck)
	if a.OK {
		t.Fatalf("positive ack, want a nack: %s", e.Frame)
	}
	return a.Code
}

// testCA issues node certificates for paths under sentinel id sent, from an ephemeral CA
// whose root is FAME_CA_CERTS for the sentinel and Config.Trust for the nodes.
type testCA struct {
	t    *testing.T
	auth *ca.Authority
	sent string
}

func newTestCA(t *testing.T, sent string) *testCA {
	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, auth: auth, sent: sent}
}

func (c *testCA) chain(key ed25519.PrivateKey, id string) []*x509.Certificate {
	c.t.Helper()
	der, err := security.CreateCSR(key, id, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	blk, _ := pem.Decode(der)
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		c.t.Fatal(err)
	}
	iss, err := c.auth.IssueNode(csr, ca.NodeRequest{RequesterID: id, PhysicalPath: "/" + c.sent + "/" + id,
		// The grant the strict stack's welcome gives: a certificate without logicals grants no logical bind.
		Logicals: []string{"*.fame.fabric", "fame.fabric"}})
	if err != nil {
		c.t.Fatal(err)
	}
	return iss.Chain
}

func (c *testCA) x5c(id string) func(ed25519.PrivateKey) []string {
	return func(key ed25519.PrivateKey) []string {
		var out []string
		for _, crt := range c.chain(key, id) {
			out = append(out, base64.StdEncoding.EncodeToString(crt.Raw))
		}
		return out
	}
}

// strict makes a node config strict-overlay with a certificate from c for system id id.
func (c *testCA) strict(cfg *node.Config, id string) {
	cfg.SystemID, cfg.SecurityProfile = id, "strict-overlay"
	cfg.Trust = security.NewTrustBundle([]*x509.Certificate{c.auth.Root})
	cfg.Certificate = func(_ context.Context, key ed25519.PrivateKey) ([]*x509.Certificate, error) {
		return c.chain(key, id), nil
	}
}
