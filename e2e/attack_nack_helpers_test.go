package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

// expectSysNack waits for the sentinel's negative DeliveryAck with code for the envelope refID,
// addressed to p's own system inbox (__sys__@<path>): the reason on the wire of a refusal
// whose envelope named no reply address. Other traffic is skipped.
func (p *rawPeer) expectSysNack(code, refID string) {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e, err := p.read(time.Until(deadline))
		if err != nil {
			p.t.Fatalf("%s: waiting for a %s nack of %s: %v", p.id, code, refID, err)
		}
		if e.FrameType() != envelope.TypeDeliveryAck {
			continue
		}
		fr, err := e.DecodeFrame()
		if err != nil {
			p.t.Fatal(err)
		}
		ack := fr.(*envelope.DeliveryAck)
		if ack.RefID != refID {
			continue
		}
		if ack.OK || ack.Code != code || e.To != "__sys__@"+p.path {
			p.t.Fatalf("%s: ack of %s: ok=%v code=%q to=%q, want a %s nack to __sys__@%s", p.id, refID, ack.OK, ack.Code, e.To, code, p.path)
		}
		return
	}
	p.t.Fatalf("%s: no %s nack of %s", p.id, code, refID)
}

// neverSees fails if p receives an envelope with id within d.
func (p *rawPeer) neverSees(id string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		e, err := p.read(time.Until(deadline))
		if err != nil {
			return
		}
		if e.ID == id {
			p.t.Fatalf("%s received the refused envelope %s (%s)", p.id, id, e.FrameType())
		}
	}
}

// dialRawPeer opens an attach socket on the peer route (/fame/v1/attach/ws/peer/<id>), which
// is open to anyone who may attach at all.
func dialRawPeer(t *testing.T, f *fabric, id string) *rawPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := strings.Replace(f.url(), "/downstream", "/peer", 1) + "/" + id
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial peer %s: %v", id, err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	p := &rawPeer{t: t, ws: ws, id: id, flow: envelope.NewID(), in: make(chan rawRead, 1024)}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			p.in <- rawRead{b, err}
			if err != nil {
				return
			}
		}
	}()
	return p
}
