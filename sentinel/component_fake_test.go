package sentinel

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

// fakePeer is a peer without a socket: it records what the components send it and how it was
// closed, and refuses sends once closed, as the engine does.
type fakePeer struct {
	identity
	keys atomic.Int32

	mu        sync.Mutex
	sent      []*envelope.Envelope
	flags     []envelope.FlowFlags
	isClosed  bool
	closeCode websocket.StatusCode
	closeWhy  string
}

var _ peer = (*fakePeer)(nil)

var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// newFakePeer is an attached downstream peer id of the sentinel at sentinelPath.
func newFakePeer(sentinelPath, id string) *fakePeer {
	p := &fakePeer{identity: identity{urlID: id, remote: "fake:" + id, origin: "downstream", systemID: id,
		path: sentinelPath + "/" + id}}
	p.sid = envelope.SecureDigest(p.path)
	return p
}

func (p *fakePeer) logger() *slog.Logger    { return discardLog }
func (p *fakePeer) keyCount() *atomic.Int32 { return &p.keys }

func (p *fakePeer) sendOwn(e *envelope.Envelope, flags envelope.FlowFlags) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed {
		return false
	}
	p.sent = append(p.sent, e)
	p.flags = append(p.flags, flags)
	return true
}

func (p *fakePeer) close(code websocket.StatusCode, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isClosed {
		p.isClosed, p.closeCode, p.closeWhy = true, code, reason
	}
}

func (p *fakePeer) closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isClosed
}

// take returns and forgets what was sent to p.
func (p *fakePeer) take() []*envelope.Envelope {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.sent
	p.sent, p.flags = nil, nil
	return out
}

// frames decodes what was sent to p, in order.
func (p *fakePeer) frames(t *testing.T) []envelope.Frame {
	t.Helper()
	var out []envelope.Frame
	for _, e := range p.take() {
		f, err := e.DecodeFrame()
		if err != nil {
			t.Fatalf("%s: decode %s: %v", p.systemID, e.FrameType(), err)
		}
		out = append(out, f)
	}
	return out
}

// refusal is one call a component made on its refuser.
type refusal struct {
	kind   string // "security", "sys" or "pending"
	peer   string // system id of the peer it named ("" for pending)
	reason string // refusal label (security) or wire code (sys, pending)
	detail string
	req    pendingReq // pending only
}

// fakeRefuser records refusals instead of putting them on the wire.
type fakeRefuser struct {
	mu  sync.Mutex
	got []refusal
}

var _ refuser = (*fakeRefuser)(nil)

func (f *fakeRefuser) securityRefusal(p peer, reason, detail string, _ ...any) {
	f.add(refusal{kind: "security", peer: p.ident().systemID, reason: reason, detail: detail})
}

func (f *fakeRefuser) nackSys(p peer, _ *envelope.Header, code, reason string) {
	f.add(refusal{kind: "sys", peer: p.ident().systemID, reason: code, detail: reason})
}

func (f *fakeRefuser) nackPending(r pendingReq, code, reason string) {
	f.add(refusal{kind: "pending", reason: code, detail: reason, req: r})
}

func (f *fakeRefuser) add(r refusal) {
	f.mu.Lock()
	f.got = append(f.got, r)
	f.mu.Unlock()
}

func (f *fakeRefuser) take() []refusal {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.got
	f.got = nil
	return out
}

// countingSigner records what it was asked to sign.
type countingSigner struct{ n atomic.Int32 }

func (s *countingSigner) signOwn(*envelope.Envelope) { s.n.Add(1) }

func mustAddr(t *testing.T, s string) envelope.Address {
	t.Helper()
	a, err := envelope.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ids lists the system ids of peers (nil entries as "<nil>").
func ids(ps []peer) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p == nil {
			out = append(out, "<nil>")
			continue
		}
		out = append(out, p.ident().systemID)
	}
	return out
}
