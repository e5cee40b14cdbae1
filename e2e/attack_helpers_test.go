package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/security"
)

// attackProfile is one security profile an attack test runs under. signed profiles make the
// hostile raw peer present keys and sign what it sends, as a real overlay node must.
type attackProfile struct {
	name   string
	env    map[string]string
	node   func(*node.Config)
	signed bool
}

var (
	profileOpen    = attackProfile{name: "open"}
	profileOverlay = attackProfile{name: "overlay", env: map[string]string{"FAME_SECURITY_PROFILE": "overlay"},
		node: func(c *node.Config) { c.SecurityProfile = "overlay" }, signed: true}
	profileGated = attackProfile{name: "gated", env: map[string]string{"FAME_SECURITY_PROFILE": "gated"},
		node: func(c *node.Config) { c.SecurityProfile = "gated" }}
	attackProfiles = []attackProfile{profileOpen, profileGated, profileOverlay}
)

func (ap attackProfile) mod(extra func(*node.Config)) func(*node.Config) {
	return func(c *node.Config) {
		if ap.node != nil {
			ap.node(c)
		}
		if extra != nil {
			extra(c)
		}
	}
}

// hostile is a raw attacker peer that, under signed profiles, presents a signing key at attach
// and signs everything it sends.
type hostile struct {
	*rawPeer
	signer *security.Signer // nil under open/gated
}

func newHostile(t *testing.T, f *fabric, ap attackProfile, id string) *hostile {
	t.Helper()
	h := &hostile{rawPeer: dialRaw(t, f, id, nil)}
	if ap.signed {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h.signer = &security.Signer{Key: priv, Kid: envelope.NewID()}
	}
	return h
}

func (h *hostile) keys() []json.RawMessage {
	if h.signer == nil {
		return nil
	}
	b, err := json.Marshal(security.SigningJWK(h.signer.Key.Public().(ed25519.PublicKey), h.signer.Kid))
	if err != nil {
		h.t.Fatal(err)
	}
	return []json.RawMessage{b}
}

// attachAs sends NodeAttach (with keys under signed profiles) and returns the ack.
func (h *hostile) attachAs(logicals ...string) *envelope.NodeAttachAck {
	h.t.Helper()
	return h.attachAck(func(na *envelope.NodeAttach) { na.Keys = h.keys() }, logicals...)
}

// sendAs stamps e like a node would, signs it under signed profiles and sends it.
func (h *hostile) sendAs(e *envelope.Envelope) {
	h.t.Helper()
	if e.FlowID == "" {
		e.FlowID = h.flow
	}
	e.SeqID = h.seq
	h.seq++
	if e.SID == "" && h.path != "" {
		e.SID = envelope.SecureDigest(h.path)
	}
	if h.signer != nil {
		if err := h.signer.Sign(e); err != nil {
			h.t.Fatal(err)
		}
	}
	b, err := e.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.sendRaw(b); err != nil {
		h.t.Fatalf("%s: send: %v", h.id, err)
	}
}

func (h *hostile) newEnv(fr envelope.Frame) *envelope.Envelope {
	h.t.Helper()
	e, err := envelope.New(fr)
	if err != nil {
		h.t.Fatal(err)
	}
	e.TraceID, e.CorrID = envelope.NewID(), envelope.NewID()
	return e
}

// bindAs sends a (signed) AddressBind and returns the ack.
func (h *hostile) bindAs(addr string) *envelope.AddressBindAck {
	h.t.Helper()
	e := h.newEnv(&envelope.AddressBind{Address: addr, PhysicalPath: h.path})
	e.ReplyTo, e.RType = "__sys__@"+h.path, envelope.RTypeAck
	h.sendAs(e)
	got := h.recv()
	fr, _ := got.DecodeFrame()
	ack, ok := fr.(*envelope.AddressBindAck)
	if !ok {
		h.t.Fatalf("%s: bind: got %s", h.id, got.Frame)
	}
	return ack
}

// refusals reads fame_security_refusals_total for reason.
func (f *fabric) refusals(t *testing.T, reason string) float64 {
	t.Helper()
	return f.metric(t, "fame_security_refusals_total", `reason="`+reason+`"`)
}

// servesTen makes ten calls with a real SDK client and fails unless each is answered by one of
// want: the victim keeps serving after the attack.
func servesTen(t *testing.T, client *node.Node, want ...string) {
	t.Helper()
	for i := 0; i < 10; i++ {
		who := whoami(t, client)
		ok := false
		for _, w := range want {
			ok = ok || who == w
		}
		if !ok {
			t.Fatalf("call %d answered by %q, want one of %v", i, who, want)
		}
	}
}

// sdkClient connects a plain SDK client (no logicals) under the profile.
func (f *fabric) sdkClient(ap attackProfile, id string) *node.Node {
	f.t.Helper()
	cfg := f.nodeConfig()
	cfg.SystemID = id
	ap.mod(nil)(&cfg)
	return f.connect(cfg)
}

// cutProxy is a TCP proxy between SDK nodes and the sentinel whose node-side connections can
// be cut while the sentinel-side ones stay open and silent: to the sentinel the node looks
// alive but hung, as after a crash behind a NAT or a half-open socket.
type cutProxy struct {
	l        net.Listener
	target   string
	mu       sync.Mutex
	nodeSide []net.Conn
	sentSide []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target}
	go p.accept()
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range append(p.nodeSide, p.sentSide...) {
			_ = c.Close()
		}
	})
	return p
}

func (p *cutProxy) accept() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.nodeSide, p.sentSide = append(p.nodeSide, in), append(p.sentSide, out)
		p.mu.Unlock()
		go pipe(out, in)
		go pipe(in, out)
	}
}

// pipe copies until either side fails; it never closes dst, so that cutting the node side
// leaves the sentinel side open.
func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cutNodeSide closes every node-side connection; the sentinel-side ones stay open, and nothing
// more reaches them.
func (p *cutProxy) cutNodeSide() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.nodeSide {
		_ = c.Close()
	}
	p.nodeSide = nil
}

func (p *cutProxy) url() string {
	return "ws://" + p.l.Addr().String() + "/fame/v1/attach/ws/downstream"
}

// silentAttach attaches id on a socket that then stops reading: it never answers a ping again.
func silentAttach(t *testing.T, f *fabric, id string, logicals ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, f.url()+"/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	send := func(fr envelope.Frame, mod func(*envelope.Envelope)) {
		e, _ := envelope.New(fr)
		e.TraceID, e.CorrID, e.FlowID = envelope.NewID(), envelope.NewID(), "silent-"+id
		if mod != nil {
			mod(e)
		}
		b, _ := e.Marshal()
		if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
	}
	next := func(ft string) *envelope.Envelope {
		for {
			_, msg, err := ws.Read(context.Background()) // an expiring read context would close the socket
			if err != nil {
				t.Fatal(err)
			}
			if e, err := envelope.Decode(msg); err == nil && e.FrameType() == ft {
				return e
			}
		}
	}
	send(&envelope.NodeAttach{OriginType: "downstream", SystemID: id, InstanceID: envelope.NewID(), AcceptedLogicals: logicals}, nil)
	ack := next(envelope.TypeNodeAttachAck)
	fr, _ := ack.DecodeFrame()
	path := fr.(*envelope.NodeAttachAck).AssignedPath
	send(&envelope.AddressBind{Address: "math@*.fame.fabric", PhysicalPath: path}, func(e *envelope.Envelope) {
		e.SID, e.ReplyTo = envelope.SecureDigest(path), "__sys__@"+path
	})
	next(envelope.TypeAddressBindAck)
	return ws
}
