package sentinel

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

var overlayEnv = map[string]string{"FAME_SECURITY_PROFILE": "overlay"}

// signingPeer is a raw peer that signs what it sends, as a TS node does in overlay.
type signingPeer struct {
	*rawPeer
	signer *security.Signer
	encKid string
	x5c    []string
}

func newSigningPeer(t *testing.T, ts *testSentinel, id string) *signingPeer {
	t.Helper()
	return &signingPeer{rawPeer: dialRaw(t, ts, id), signer: newSigner(t), encKid: envelope.NewID()}
}

func newSigner(t testing.TB) *security.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &security.Signer{Key: priv, Kid: envelope.NewID()}
}

func (p *signingPeer) pub() ed25519.PublicKey { return p.signer.Key.Public().(ed25519.PublicKey) }

// jwks are the keys this peer presents at attach: signing (with x5c when it holds a
// certificate) and encryption.
func (p *signingPeer) jwks() []json.RawMessage {
	p.t.Helper()
	sig := security.SigningJWK(p.pub(), p.signer.Kid)
	sig.X5C = p.x5c
	enc, err := security.NewX25519Key(rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	var out []json.RawMessage
	for _, j := range []security.JWK{sig, security.EncryptionJWK(enc.Public, p.encKid)} {
		b, err := json.Marshal(j)
		if err != nil {
			p.t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (p *signingPeer) sendAttach(logicals ...string) {
	p.t.Helper()
	p.sendFrame(&envelope.NodeAttach{OriginType: "downstream", SystemID: p.id, InstanceID: envelope.NewID(),
		AcceptedLogicals: logicals, Keys: p.jwks()}, nil)
}

func (p *signingPeer) attachSigned(logicals ...string) *envelope.NodeAttachAck {
	p.t.Helper()
	p.sendAttach(logicals...)
	e := p.recv()
	f, err := e.DecodeFrame()
	if err != nil {
		p.t.Fatal(err)
	}
	ack, ok := f.(*envelope.NodeAttachAck)
	if !ok || !ack.OK {
		p.t.Fatalf("attach: got %s", e.Frame)
	}
	p.path = ack.AssignedPath
	return ack
}

// sendSigned stamps, signs with signer (the peer's own unless given) and sends e.
func (p *signingPeer) sendSigned(e *envelope.Envelope, signer *security.Signer) {
	p.t.Helper()
	if e.FlowID == "" {
		e.FlowID = p.flow
	}
	e.SeqID = p.seq
	p.seq++
	if e.SID == "" {
		e.SID = envelope.SecureDigest(p.path)
	}
	if signer == nil {
		signer = p.signer
	}
	if err := signer.Sign(e); err != nil {
		p.t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.sendRaw(b); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *signingPeer) newEnv(f envelope.Frame) *envelope.Envelope {
	p.t.Helper()
	e, err := envelope.New(f)
	if err != nil {
		p.t.Fatal(err)
	}
	e.TraceID, e.CorrID = envelope.NewID(), envelope.NewID()
	return e
}

func (p *signingPeer) request(to, payload string) *envelope.Envelope {
	e := p.newEnv(&envelope.Data{Payload: json.RawMessage(payload)})
	e.To, e.ReplyTo, e.RType = to, "__rpc__x@"+p.path, envelope.RTypeReply
	return e
}

func (p *signingPeer) bindSigned(addr string) (*envelope.Envelope, *envelope.AddressBindAck) {
	p.t.Helper()
	e := p.newEnv(&envelope.AddressBind{Address: addr, PhysicalPath: p.path, EncryptionKeyID: p.encKid})
	e.ReplyTo, e.RType = "__sys__@"+p.path, envelope.RTypeAck
	p.sendSigned(e, nil)
	got := p.recv()
	f, _ := got.DecodeFrame()
	ack, ok := f.(*envelope.AddressBindAck)
	if !ok {
		p.t.Fatalf("bind: got %s", got.Frame)
	}
	return got, ack
}

// sentinelKey returns the sentinel's signing key from a NodeAttachAck.
func sentinelKey(t *testing.T, ack *envelope.NodeAttachAck) security.JWK {
	t.Helper()
	for _, raw := range ack.Keys {
		j, err := security.ParseJWK(raw)
		if err != nil {
			t.Fatalf("ack key %s: %v", raw, err)
		}
		if j.Use == "sig" {
			return j
		}
	}
	t.Fatalf("NodeAttachAck carries no signing key: %+v", ack.Keys)
	return security.JWK{}
}

// expectSignedBy checks that e is signed by the sentinel's key from its NodeAttachAck.
func expectSignedBy(t *testing.T, ts *testSentinel, e *envelope.Envelope, key security.JWK) {
	t.Helper()
	sec, err := security.ParseSec(e.Sec)
	if err != nil || sec == nil || sec.Sig == nil {
		t.Fatalf("%s from the sentinel is not signed: %s", e.FrameType(), e.Sec)
	}
	if sec.Sig.Kid != key.Kid {
		t.Fatalf("signed with kid %s, sentinel announced %s", sec.Sig.Kid, key.Kid)
	}
	if e.SID != envelope.SecureDigest(ts.PhysicalPath()) {
		t.Fatalf("sid %q is not the sentinel's", e.SID)
	}
	pub, err := key.Ed25519()
	if err != nil {
		t.Fatal(err)
	}
	if err := security.Verify(e, pub); err != nil {
		t.Fatalf("%s signature does not verify with the announced key: %v", e.FrameType(), err)
	}
}

func decodeAs[T envelope.Frame](t *testing.T, e *envelope.Envelope) T {
	t.Helper()
	f, err := e.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := f.(T)
	if !ok {
		t.Fatalf("want %T, got %s", v, e.Frame)
	}
	return v
}

func expectNothing(t *testing.T, p *rawPeer, d time.Duration) {
	t.Helper()
	for {
		e, err := p.read(d)
		if errors.Is(err, errReadTimeout) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", p.id, err)
		}
		if ft := e.FrameType(); ft != envelope.TypeCreditUpdate && ft != envelope.TypeNodeHeartbeatAck {
			t.Fatalf("%s: unexpected %s", p.id, e.Frame)
		}
	}
}

// overlayPair starts an overlay sentinel with agent1 serving math@fame.fabric and client1.
func overlayPair(t *testing.T) (ts *testSentinel, agent, client *signingPeer, sentKey security.JWK) {
	t.Helper()
	ts = startSentinel(t, overlayEnv)
	agent = newSigningPeer(t, ts, "agent1")
	sentKey = sentinelKey(t, agent.attachSigned("fame.fabric"))
	if _, ack := agent.bindSigned("math@fame.fabric"); !ack.OK {
		t.Fatalf("bind refused: %+v", ack)
	}
	client = newSigningPeer(t, ts, "client1")
	client.attachSigned("*")
	return ts, agent, client, sentKey
}

func TestOverlayAttachAckCarriesSentinelKeys(t *testing.T) {
	ts := startSentinel(t, overlayEnv)
	agent := newSigningPeer(t, ts, "agent1")
	ack := agent.attachSigned("fame.fabric")
	if len(ack.Keys) != 2 {
		t.Fatalf("want a signing and an encryption key, got %d", len(ack.Keys))
	}
	byUse := map[string]security.JWK{}
	for _, raw := range ack.Keys {
		j, err := security.ParseJWK(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Kid) != envelope.IDLength || j.SID != "" || j.PhysicalPath != "" {
			t.Fatalf("key not in the reference shape: %s", raw)
		}
		byUse[j.Use] = j
	}
	if byUse["sig"].Crv != "Ed25519" || byUse["sig"].Alg != "EdDSA" || byUse["enc"].Crv != "X25519" || byUse["enc"].Alg != "ECDH-ES" {
		t.Fatalf("keys: %+v", byUse)
	}
	if byUse["sig"].Kid == byUse["enc"].Kid {
		t.Fatal("signing and encryption keys share a kid")
	}
	// A second node sees the same sentinel keys; they are per process, not per connection.
	other := newSigningPeer(t, ts, "agent2")
	if got := sentinelKey(t, other.attachSigned("fame.fabric")); got.Kid != byUse["sig"].Kid || got.X != byUse["sig"].X {
		t.Fatalf("sentinel key differs between attaches: %+v vs %+v", got, byUse["sig"])
	}

	// Its own acks are signed with that key.
	bindAck, ab := agent.bindSigned("math@fame.fabric")
	if !ab.OK {
		t.Fatalf("bind: %+v", ab)
	}
	expectSignedBy(t, ts, bindAck, byUse["sig"])
}

func TestOverlaySignedRequestRouted(t *testing.T) {
	_, agent, client, _ := overlayPair(t)
	req := client.request("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"add","params":{"x":3,"y":4.0}}`)
	client.sendSigned(req, nil)
	got := agent.recv()
	if got.ID != req.ID || string(got.Sec) != string(req.Sec) || string(got.Frame) != string(req.Frame) {
		t.Fatalf("forwarded envelope changed:\n got %s %s\nwant %s %s", got.Frame, got.Sec, req.Frame, req.Sec)
	}
	if err := security.Verify(got, client.pub()); err != nil {
		t.Fatalf("end-to-end signature broken by forwarding: %v", err)
	}
	reply := agent.newEnv(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","result":7}`)})
	reply.To, reply.CorrID = req.ReplyTo, req.CorrID
	agent.sendSigned(reply, nil)
	if back := client.recv(); back.ID != reply.ID || back.CorrID != req.CorrID {
		t.Fatalf("reply: %s", back.Frame)
	}
}

func TestOverlayRefusals(t *testing.T) {
	ts, agent, client, sentKey := overlayPair(t)
	mallory := newSigningPeer(t, ts, "mallory")
	mallory.attachSigned("*")
	stray := newSigner(t)

	// forged signs a request, then changes its pd: the shallow check trusts pd, so the
	// signature no longer matches what the envelope claims.
	forged := func(e *envelope.Envelope) {
		e.FlowID, e.SeqID, e.SID = client.flow, client.seq, envelope.SecureDigest(client.path)
		client.seq++
		if err := client.signer.Sign(e); err != nil {
			t.Fatal(err)
		}
		e.Frame = json.RawMessage(strings.Replace(string(e.Frame), `"pd":"`, `"pd":"X`, 1))
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := client.sendRaw(b); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		send   func(e *envelope.Envelope)
		code   string
		reason string
	}{
		{"unsigned", func(e *envelope.Envelope) { client.send(e) }, "signature_required", "signature required for Data"},
		{"forged signature", forged, "signature_verification_failed", "signature verification failed"},
		{"another node's key (sid mismatch)", func(e *envelope.Envelope) { client.sendSigned(e, mallory.signer) },
			"signature_verification_failed", "envelope sid does not match"},
		{"unknown key", func(e *envelope.Envelope) { client.sendSigned(e, stray) },
			"signature_verification_failed", "unknown signing key " + stray.Kid},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := nackCount(t, ts, tc.code)
			req := client.request("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"add","params":{"x":1,"y":2}}`)
			tc.send(req)
			nack := client.recv()
			if d := nackCount(t, ts, tc.code) - before; d != 1 {
				t.Fatalf("nack counter moved by %v, want 1", d)
			}
			da := decodeAs[*envelope.DeliveryAck](t, nack)
			if da.OK || da.Code != tc.code || da.RefID != req.ID || !strings.Contains(da.Reason, tc.reason) {
				t.Fatalf("nack %s, want code %s reason ~%q refId %s", nack.Frame, tc.code, tc.reason, req.ID)
			}
			if nack.CorrID != req.CorrID || nack.TraceID != req.TraceID || nack.To != req.ReplyTo {
				t.Fatalf("nack not correlated: corr %s trace %s to %s", nack.CorrID, nack.TraceID, nack.To)
			}
			expectSignedBy(t, ts, nack, sentKey)
			if !strings.Contains(ts.logs.String(), "code="+tc.code) {
				t.Fatal("refusal not logged")
			}
		})
	}
	expectNothing(t, agent.rawPeer, 200*time.Millisecond)
}

// An unauthenticated envelope must not make the sentinel write to whoever its replyTo names.
func TestOverlayRefusalNotReflected(t *testing.T) {
	_, agent, client, _ := overlayPair(t)
	req := client.request("math@fame.fabric", `{}`)
	req.ReplyTo = "__rpc__x@" + agent.path
	client.send(req) // unsigned
	expectNothing(t, agent.rawPeer, 200*time.Millisecond)
	expectNothing(t, client.rawPeer, 50*time.Millisecond)
}

func TestOverlayKeyRequestByKid(t *testing.T) {
	ts, agent, client, sentKey := overlayPair(t)
	tests := []struct {
		name     string
		kid      string
		wantPath string
		wantX    string
	}{
		{"agent key", agent.signer.Kid, agent.path, security.SigningJWK(agent.pub(), "").X},
		{"sentinel key", sentKey.Kid, ts.PhysicalPath(), sentKey.X},
		{"unknown kid", "nobodysKid00000", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := client.newEnv(&envelope.KeyRequest{Kid: tc.kid, PhysicalPath: client.path})
			client.sendSigned(req, nil)
			got := client.recv()
			expectSignedBy(t, ts, got, sentKey)
			if got.CorrID != req.CorrID || got.TraceID != req.TraceID {
				t.Fatalf("answer not correlated: %+v", got)
			}
			if tc.wantPath == "" {
				da := decodeAs[*envelope.DeliveryAck](t, got)
				if da.OK || da.Code != "KEY_NOT_FOUND" || da.RefID != req.ID {
					t.Fatalf("want KEY_NOT_FOUND nack, got %s", got.Frame)
				}
				return
			}
			ka := decodeAs[*envelope.KeyAnnounce](t, got)
			if ka.PhysicalPath != tc.wantPath || len(ka.Keys) != 1 || ka.Created == "" {
				t.Fatalf("announce: %s", got.Frame)
			}
			j, err := security.ParseJWK(ka.Keys[0])
			if err != nil {
				t.Fatal(err)
			}
			if j.Kid != tc.kid || j.X != tc.wantX || j.PhysicalPath != tc.wantPath || j.SID != envelope.SecureDigest(tc.wantPath) {
				t.Fatalf("announced key %s", ka.Keys[0])
			}
		})
	}
	// An unsigned KeyRequest (critical frame) gets no answer.
	client.send(client.newEnv(&envelope.KeyRequest{Kid: agent.signer.Kid, PhysicalPath: client.path}))
	expectNothing(t, client.rawPeer, 200*time.Millisecond)
}

func TestOverlayKeyRequestByAddressRewrapped(t *testing.T) {
	ts, agent, client, sentKey := overlayPair(t)
	mallory := newSigningPeer(t, ts, "mallory")
	mallory.attachSigned("*")

	req := client.newEnv(&envelope.KeyRequest{Address: "math@fame.fabric", PhysicalPath: client.path})
	client.sendSigned(req, nil)
	fwd := agent.recv()
	if fwd.ID != req.ID || string(fwd.Sec) != string(req.Sec) {
		t.Fatalf("KeyRequest by address not routed to the binder unchanged: %s", fwd.Frame)
	}

	// Another node answering the same correlation id is not vouched for.
	fake := mallory.newEnv(&envelope.KeyAnnounce{PhysicalPath: mallory.path, Keys: mallory.jwks()[1:]})
	fake.CorrID, fake.TraceID = req.CorrID, req.TraceID
	mallory.sendSigned(fake, nil)
	expectNothing(t, client.rawPeer, 200*time.Millisecond)

	encKeys := agent.jwks()[1:]
	ans := agent.newEnv(&envelope.KeyAnnounce{Address: "math@fame.fabric", PhysicalPath: agent.path, Keys: encKeys, Created: envelope.Now()})
	ans.CorrID, ans.TraceID = req.CorrID, req.TraceID
	agent.sendSigned(ans, nil)
	got := client.recv()
	expectSignedBy(t, ts, got, sentKey)
	if got.ID == ans.ID || got.CorrID != req.CorrID || got.TraceID != req.TraceID || got.FlowID != ans.FlowID {
		t.Fatalf("re-wrap: id %s corr %s trace %s flow %s", got.ID, got.CorrID, got.TraceID, got.FlowID)
	}
	ka := decodeAs[*envelope.KeyAnnounce](t, got)
	if ka.PhysicalPath != agent.path || ka.Address != "math@fame.fabric" || len(ka.Keys) != 1 || !strings.Contains(string(ka.Keys[0]), agent.encKid) {
		t.Fatalf("re-wrapped frame: %s", got.Frame)
	}
	// The correlation is used up.
	agent.sendSigned(ans, nil)
	expectNothing(t, client.rawPeer, 200*time.Millisecond)
}

func TestOverlayKeyAnnounceStored(t *testing.T) {
	ts, agent, client, _ := overlayPair(t)
	// A child sentinel below agent1 announces its own child's key.
	sub := newSigner(t)
	subPath := agent.path + "/child"
	subKey := mustJSON(t, security.SigningJWK(sub.Key.Public().(ed25519.PublicKey), sub.Kid))
	agent.sendSigned(agent.newEnv(&envelope.KeyAnnounce{PhysicalPath: subPath, Keys: []json.RawMessage{subKey}}), nil)
	outsideKey := mustJSON(t, security.SigningJWK(client.pub(), "outsideKid00000"))
	agent.sendSigned(agent.newEnv(&envelope.KeyAnnounce{PhysicalPath: client.path + "/x", Keys: []json.RawMessage{outsideKey}}), nil)
	// The announce outside its subtree is refused, with the reason on the wire and counted.
	expectSysNack(t, agent, codeKeyAnnounce)
	if n := refusalCount(t, ts, refusalKeyAnnounceForeignPath); n != 1 {
		t.Fatalf("refusals{%s} = %v, want 1", refusalKeyAnnounceForeignPath, n)
	}
	// A round trip on the agent's connection: its announces have been handled after this.
	if _, ack := agent.bindSigned("sync@fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}

	ask := func(kid string) *envelope.Envelope {
		req := client.newEnv(&envelope.KeyRequest{Kid: kid, PhysicalPath: client.path})
		client.sendSigned(req, nil)
		return client.recv()
	}
	if got := decodeAs[*envelope.KeyAnnounce](t, ask(sub.Kid)); got.PhysicalPath != subPath {
		t.Fatalf("announced subtree key stored under %s", got.PhysicalPath)
	}
	if da := decodeAs[*envelope.DeliveryAck](t, ask("outsideKid00000")); da.Code != "KEY_NOT_FOUND" {
		t.Fatalf("a key announced outside the announcer's path was stored: %+v", da)
	}
	// Keys go with their node.
	_ = agent.ws.Close(websocket.StatusNormalClosure, "bye")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := ask(sub.Kid)
		if got.FrameType() == envelope.TypeDeliveryAck {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("keys of a detached node are still served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if da := decodeAs[*envelope.DeliveryAck](t, ask(agent.signer.Kid)); da.Code != "KEY_NOT_FOUND" {
		t.Fatalf("detached node's own key still served: %+v", da)
	}
}

func TestOverlayReattachKeepsNewKeys(t *testing.T) {
	ts, agent, client, _ := overlayPair(t)
	// The old connection is gone (a crash), so the re-attach with new keys is accepted.
	_ = agent.ws.CloseNow()
	again := newSigningPeer(t, ts, "agent1")
	again.attachSigned("fame.fabric")
	req := client.newEnv(&envelope.KeyRequest{Kid: again.signer.Kid, PhysicalPath: client.path})
	client.sendSigned(req, nil)
	if ka := decodeAs[*envelope.KeyAnnounce](t, client.recv()); ka.PhysicalPath != again.path {
		t.Fatalf("announce %+v", ka)
	}
	req = client.newEnv(&envelope.KeyRequest{Kid: agent.signer.Kid, PhysicalPath: client.path})
	client.sendSigned(req, nil)
	if da := decodeAs[*envelope.DeliveryAck](t, client.recv()); da.Code != "KEY_NOT_FOUND" {
		t.Fatalf("replaced connection's key still served: %+v", da)
	}
}

func TestOverlayKidTakeoverRefused(t *testing.T) {
	ts, agent, _, sentKey := overlayPair(t)
	for _, kid := range []string{agent.signer.Kid, sentKey.Kid} {
		m := newSigningPeer(t, ts, "mallory"+kid[:4])
		m.signer.Kid = kid
		m.sendAttach("*")
		m.expectClosed(t, websocket.StatusPolicyViolation, "already registered")
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenAndGatedHaveNoSecLayer(t *testing.T) {
	for _, p := range []string{"open", "gated"} {
		ts := startSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": p})
		if ts.sec != nil {
			t.Fatalf("%s: security layer present", p)
		}
		peer := dialRaw(t, ts, "n1")
		if ack := peer.attach("*"); len(ack.Keys) != 0 {
			t.Fatalf("%s: NodeAttachAck carries keys", p)
		}
	}
}

func TestStrictOverlay(t *testing.T) {
	opts, err := LoadOptions("", func(k string) (string, bool) {
		if k == "FAME_SECURITY_PROFILE" {
			return "strict-overlay", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "FAME_CA_CERTS") {
		t.Fatalf("strict-overlay without a CA bundle: %v", err)
	}

	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	ts := startSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": "strict-overlay", "FAME_NODE_ID": "sent1",
		"FAME_CA_CERTS": string(auth.RootPEM())})
	issue := func(p *signingPeer, path string, logicals ...string) {
		der, err := security.CreateCSR(p.signer.Key, p.id, nil)
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
		for _, c := range iss.Chain {
			p.x5c = append(p.x5c, base64.StdEncoding.EncodeToString(c.Raw))
		}
	}

	good := newSigningPeer(t, ts, "agent1")
	issue(good, "/sent1/agent1", "fame.fabric") // a certificate without logicals grants no logical bind
	good.attachSigned("fame.fabric")
	if _, ack := good.bindSigned("math@fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}

	wrongSID := newSigningPeer(t, ts, "agent2")
	issue(wrongSID, "/sent1/someoneelse")
	wrongSID.sendAttach("fame.fabric")
	wrongSID.expectClosed(t, websocket.StatusPolicyViolation, "sid does not match")

	noCert := newSigningPeer(t, ts, "agent3")
	noCert.sendAttach("fame.fabric")
	noCert.expectClosed(t, websocket.StatusPolicyViolation, "x5c")

	other, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	foreign := newSigningPeer(t, ts, "agent4")
	auth, other = other, auth
	issue(foreign, "/sent1/agent4")
	auth = other
	foreign.sendAttach("fame.fabric")
	foreign.expectClosed(t, websocket.StatusPolicyViolation, "does not chain")
}

func nackCount(t *testing.T, ts *testSentinel, code string) float64 {
	t.Helper()
	var m dto.Metric
	if err := ts.metrics.nacks.WithLabelValues(code).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
