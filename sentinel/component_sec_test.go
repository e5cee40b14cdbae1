package sentinel

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// The security layer with fake peers: key ownership, the key limit, key frames, and signature
// enforcement with its refusals. No sockets, no Sentinel.

type secFixture struct {
	l       *secLayer
	routes  *routeTable
	refuse  *fakeRefuser
	metrics *metrics
}

func newSecFixture(t *testing.T, env map[string]string) *secFixture {
	t.Helper()
	opts, err := LoadOptions("", config.Getenv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	f := &secFixture{routes: newRouteTable(), refuse: &fakeRefuser{}, metrics: newMetrics(metricSources{})}
	f.l, err = newSecLayer(secDeps{opts: opts, path: "/s", sid: envelope.SecureDigest("/s"), log: discardLog,
		metrics: f.metrics, routes: f.routes, limits: newLimiter(opts, discardLog, f.metrics.limitRefusals), refuse: f.refuse})
	if err != nil {
		t.Fatal(err)
	}
	if f.l == nil {
		t.Fatal("overlay built no security layer")
	}
	return f
}

// keyedPeer is a fake peer with a signing key.
type keyedPeer struct {
	*fakePeer
	signer *security.Signer
}

func newKeyedPeer(t *testing.T, id string) *keyedPeer {
	return &keyedPeer{fakePeer: newFakePeer("/s", id), signer: newSigner(t)}
}

func (p *keyedPeer) jwk(t *testing.T) security.JWK {
	t.Helper()
	return security.SigningJWK(p.signer.Key.Public().(ed25519.PublicKey), p.signer.Kid)
}

func (p *keyedPeer) rawKey(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(p.jwk(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attach registers p's key the way NodeAttach does and enters p in the route table.
func (f *secFixture) attach(t *testing.T, p *keyedPeer) {
	t.Helper()
	if err := f.l.attachKeys(p, &envelope.NodeAttach{SystemID: p.systemID, Keys: []json.RawMessage{p.rawKey(t)}}); err != nil {
		t.Fatalf("attach %s: %v", p.systemID, err)
	}
	f.routes.attach(p)
}

// envelopeFrom builds what p sends, signed by signer when it is not nil, as bytes and header.
func envelopeFrom(t *testing.T, p *fakePeer, signer *security.Signer, f envelope.Frame, mod func(*envelope.Envelope)) ([]byte, *envelope.Header) {
	t.Helper()
	e, err := envelope.New(f)
	if err != nil {
		t.Fatal(err)
	}
	e.SID, e.TraceID, e.CorrID, e.FlowID = p.sid, envelope.NewID(), envelope.NewID(), envelope.NewID()
	if mod != nil {
		mod(e)
	}
	if signer != nil {
		if err := signer.Sign(e); err != nil {
			t.Fatal(err)
		}
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var h envelope.Header
	if err := envelope.ParseHeader(b, &h); err != nil {
		t.Fatal(err)
	}
	return b, &h
}

// TestSecKeyOwnership: a kid belongs to the live path that registered it first; the sentinel's
// own kids to nobody else; a detached node's keys are free again.
func TestSecKeyOwnership(t *testing.T) {
	f := newSecFixture(t, overlayEnv)
	a, b := newKeyedPeer(t, "a"), newKeyedPeer(t, "b")
	f.attach(t, a)
	var own security.JWK
	if err := json.Unmarshal(f.l.ackKeys()[0], &own); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		do    func() error
		taken bool
	}{
		{"b presents a's kid", func() error { return f.l.register(b, b.path, []security.JWK{a.jwk(t)}) }, true},
		{"b presents the sentinel's kid", func() error { return f.l.register(b, b.path, []security.JWK{own}) }, true},
		{"a presents its kid again", func() error { return f.l.register(a, a.path, []security.JWK{a.jwk(t)}) }, false},
		{"after a detached, b may use a's kid", func() error {
			f.l.forget(a)
			return f.l.register(b, b.path, []security.JWK{a.jwk(t)})
		}, false},
	}
	for _, st := range steps {
		err := st.do()
		if got := err != nil && errors.Is(err, errKeys); got != st.taken {
			t.Errorf("%s: err %v, refused %v, want %v", st.name, err, got, st.taken)
		}
	}
	// b registered a's key under b's own path: that makes b's sid b's, never a's.
	if !f.l.sidOwnedBy(b, b.sid) || f.l.sidOwnedBy(b, a.sid) {
		t.Errorf("sidOwnedBy(b, b) = %v, sidOwnedBy(b, a) = %v, want true, false", f.l.sidOwnedBy(b, b.sid), f.l.sidOwnedBy(b, a.sid))
	}
}

// TestSecKeyLimit: keys past MaxKeys for one connection are refused whole, counted under the
// limit, and a peer's count only grows by what was stored.
func TestSecKeyLimit(t *testing.T) {
	f := newSecFixture(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_MAX_KEYS": "2"})
	a := newKeyedPeer(t, "a")
	f.attach(t, a)
	if got := a.keys.Load(); got != 1 {
		t.Fatalf("keys held after attach = %d, want 1", got)
	}
	two := []security.JWK{newKeyedPeer(t, "x").jwk(t), newKeyedPeer(t, "y").jwk(t)}
	err := f.l.register(a, a.path+"/sub", two)
	if !errors.Is(err, errKeyLimit) {
		t.Fatalf("register past the limit: %v, want errKeyLimit", err)
	}
	if got := a.keys.Load(); got != 1 {
		t.Errorf("keys held after a refused register = %d, want 1", got)
	}
	if got := counterValue(t, f.metrics.limitRefusals.WithLabelValues(limitKeys)); got != 1 {
		t.Errorf("limit refusals{keys} = %v, want 1", got)
	}
	if err := f.l.register(a, a.path+"/sub", two[:1]); err != nil {
		t.Fatalf("register within the limit: %v", err)
	}
	if got := a.keys.Load(); got != 2 {
		t.Errorf("keys held = %d, want 2", got)
	}
}

// TestSecKeyFrames: KeyRequest by kid is answered from the directory (or KEY_NOT_FOUND); a
// KeyAnnounce outside the sender's subtree is refused; the answer to a KeyRequest{address} is
// re-wrapped for its requester only when the node that answers serves the address.
func TestSecKeyFrames(t *testing.T) {
	f := newSecFixture(t, overlayEnv)
	client, rep, other := newKeyedPeer(t, "client"), newKeyedPeer(t, "rep"), newKeyedPeer(t, "other")
	for _, p := range []*keyedPeer{client, rep, other} {
		f.attach(t, p)
	}
	f.routes.bind(rep, mustAddr(t, "math@*.fame.fabric"))

	// By kid.
	msg, h := envelopeFrom(t, client.fakePeer, nil, &envelope.KeyRequest{Kid: rep.signer.Kid}, nil)
	if !f.l.keyFrame(client, msg, h) {
		t.Fatal("KeyRequest{kid} not consumed")
	}
	if fr := client.frames(t); len(fr) != 1 || fr[0].(*envelope.KeyAnnounce).PhysicalPath != rep.path {
		t.Fatalf("KeyRequest{kid} answered %#v", fr)
	}
	msg, h = envelopeFrom(t, client.fakePeer, nil, &envelope.KeyRequest{Kid: "nobody"}, nil)
	f.l.keyFrame(client, msg, h)
	if fr := client.frames(t); len(fr) != 1 || fr[0].(*envelope.DeliveryAck).Code != codeKeyNotFound {
		t.Fatalf("KeyRequest for an unknown kid answered %#v", fr)
	}

	// Announcing keys for another node's path.
	msg, h = envelopeFrom(t, other.fakePeer, nil, &envelope.KeyAnnounce{PhysicalPath: rep.path,
		Keys: []json.RawMessage{other.rawKey(t)}}, nil)
	f.l.keyFrame(other, msg, h)
	want := []refusal{{kind: "security", peer: "other", reason: refusalKeyAnnounceForeignPath},
		{kind: "sys", peer: "other", reason: codeKeyAnnounce}}
	if got := stripDetail(f.refuse.take()); !slices.Equal(got, want) {
		t.Fatalf("foreign KeyAnnounce: %+v, want %+v", got, want)
	}

	// By address: remembered, then routed (not consumed).
	msg, h = envelopeFrom(t, client.fakePeer, nil, &envelope.KeyRequest{Address: "math@fame.fabric"}, func(e *envelope.Envelope) {
		e.CorrID = "corr-1"
	})
	if f.l.keyFrame(client, msg, h) {
		t.Fatal("KeyRequest{address} consumed; it must be routed")
	}
	answer := func(from *keyedPeer) {
		msg, h := envelopeFrom(t, from.fakePeer, nil, &envelope.KeyAnnounce{PhysicalPath: from.path,
			Keys: []json.RawMessage{from.rawKey(t)}}, func(e *envelope.Envelope) { e.CorrID = "corr-1" })
		if !f.l.keyFrame(from, msg, h) {
			t.Fatal("KeyAnnounce not consumed")
		}
	}
	answer(other) // does not serve math@fame.fabric
	want = []refusal{{kind: "security", peer: "other", reason: refusalKeyAnnounceUnserved},
		{kind: "sys", peer: "other", reason: codeKeyAnnounce}}
	if got := stripDetail(f.refuse.take()); !slices.Equal(got, want) {
		t.Fatalf("KeyAnnounce from a node that does not serve the address: %+v, want %+v", got, want)
	}
	if got := client.take(); len(got) != 0 {
		t.Fatalf("the wrong answer reached the requester: %d envelopes", len(got))
	}
	answer(rep)
	got := client.take()
	if len(got) != 1 || got[0].FrameType() != envelope.TypeKeyAnnounce || got[0].CorrID != "corr-1" ||
		got[0].SID != envelope.SecureDigest("/s") || len(got[0].Sec) == 0 {
		t.Fatalf("re-wrapped answer: %+v", got)
	}
	if f.l.corr.len() != 0 {
		t.Errorf("corr map holds %d entries after the answer", f.l.corr.len())
	}
}

func stripDetail(rs []refusal) []refusal {
	for i := range rs {
		rs[i].detail = ""
	}
	return rs
}

// TestSecInbound: what a peer sends must be signed by a key of its own subtree; each refusal
// goes to the right place (the sender's replyTo, or its __sys__ inbox).
func TestSecInbound(t *testing.T) {
	f := newSecFixture(t, overlayEnv)
	a, b := newKeyedPeer(t, "a"), newKeyedPeer(t, "b")
	f.attach(t, a)
	f.attach(t, b)
	request := func(e *envelope.Envelope) {
		e.To, e.ReplyTo, e.RType = "math@fame.fabric", "__rpc__x@"+a.path, envelope.RTypeReply
	}
	fireAndForget := func(e *envelope.Envelope) { e.To = "math@fame.fabric" }
	data := &envelope.Data{Payload: json.RawMessage(`{}`)}
	cases := []struct {
		name   string
		signer *security.Signer
		mod    func(*envelope.Envelope)
		pass   bool
		want   []refusal
	}{
		{"signed by its own key", a.signer, request, true, nil},
		{"unsigned request", nil, request, false, []refusal{{kind: "pending", reason: codeSignatureRequired}}},
		{"unsigned, no reply address", nil, fireAndForget, false, nil}, // dropped, counted
		{"signed by another node's key", b.signer, func(e *envelope.Envelope) { request(e); e.SID = b.sid }, false,
			[]refusal{{kind: "security", peer: "a", reason: refusalForeignKey}, {kind: "pending", reason: codeForeignKey}}},
		{"another node's key, no reply address", b.signer, func(e *envelope.Envelope) { fireAndForget(e); e.SID = b.sid }, false,
			[]refusal{{kind: "security", peer: "a", reason: refusalForeignKey}, {kind: "sys", peer: "a", reason: codeForeignKey}}},
		{"reply address of a third party", nil, func(e *envelope.Envelope) { request(e); e.ReplyTo = "__rpc__x@" + b.path }, false, nil},
	}
	for _, tc := range cases {
		msg, h := envelopeFrom(t, a.fakePeer, tc.signer, data, tc.mod)
		if got := f.l.inbound(a, msg, h); got != tc.pass {
			t.Errorf("%s: inbound = %v, want %v", tc.name, got, tc.pass)
		}
		got := f.refuse.take()
		for i := range got {
			got[i].detail, got[i].req = "", pendingReq{}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: refusals %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
