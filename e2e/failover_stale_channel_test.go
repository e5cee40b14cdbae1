package e2e

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// A client's request encrypted for a channel whose replica just died can reach the sentinel
// after the replica's bindings were purged (it was in flight when the SecureClose went out).
// Routing it to another replica is useless: that replica has no such channel and drops it, and
// the caller waits for its timeout (seen with the reference Python client: a 5 s stall). The
// sentinel must nack it at once, with a reason, so the caller re-opens its channel.
func TestStaleChannelRequestIsNackedNotRerouted(t *testing.T) {
	f := newFabric(t, nil)
	r1 := dialRaw(t, f, "replica-a", nil)
	r1.attach("*.fame.fabric")
	r1.bind("math@*.fame.fabric")
	r2 := dialRaw(t, f, "replica-b", nil)
	r2.attach("*.fame.fabric")
	r2.bind("math@*.fame.fabric")
	cl := dialRaw(t, f, "client-c", nil)
	cl.attach()

	// The client opens a channel; whichever replica receives the SecureOpen holds it.
	const cid = "auto-math@fame.fabric-stale1"
	cl.sendFrame(&envelope.SecureOpen{CID: cid, EphPub: "AAAA", Alg: "CHACHA20P1305"}, func(e *envelope.Envelope) {
		e.SID, e.To, e.ReplyTo = envelope.SecureDigest(cl.path), "math@fame.fabric", "__rpc__x@"+cl.path
	})
	holder, other := r1, r2
	if _, err := readFrame(r1, envelope.TypeSecureOpen, 2*time.Second); err != nil {
		if _, err := readFrame(r2, envelope.TypeSecureOpen, 2*time.Second); err != nil {
			t.Fatalf("neither replica received the SecureOpen: %v", err)
		}
		holder, other = r2, r1
	}
	before := f.metric(t, "fame_nacks_total", `code="CHANNEL_CLOSED"`)

	// The holder dies; the client is told to re-open its channel.
	_ = holder.ws.CloseNow()
	if _, err := readFrame(cl, envelope.TypeSecureClose, 5*time.Second); err != nil {
		t.Fatalf("client got no SecureClose: %v", err)
	}

	// A request still encrypted for the dead channel arrives now.
	req := cl.sendFrame(&envelope.Data{Payload: json.RawMessage(`"ciphertext"`)}, func(e *envelope.Envelope) {
		e.SID, e.To, e.ReplyTo, e.RType = envelope.SecureDigest(cl.path), "math@fame.fabric", "__rpc__x@"+cl.path, envelope.RTypeReply
		sec, _ := json.Marshal(envelope.Sec{Enc: &envelope.Encryption{Alg: "chacha20-poly1305-channel", Kid: cid, Val: "00"}})
		e.Sec = sec
	})
	nack, err := readFrame(cl, envelope.TypeDeliveryAck, 5*time.Second)
	if err != nil {
		t.Fatalf("no nack for a request on a closed channel: %v", err)
	}
	fr, _ := nack.DecodeFrame()
	ack := fr.(*envelope.DeliveryAck)
	if ack.OK || ack.Code != "CHANNEL_CLOSED" || ack.RefID != req.ID || nack.CorrID != req.CorrID {
		t.Fatalf("nack = %+v (corrId %s), want CHANNEL_CLOSED for %s", ack, nack.CorrID, req.ID)
	}
	if _, err := readFrame(other, envelope.TypeData, 500*time.Millisecond); err == nil {
		t.Fatal("the request for the dead channel was routed to the other replica")
	}
	if after := f.metric(t, "fame_nacks_total", `code="CHANNEL_CLOSED"`); after != before+1 {
		t.Fatalf("fame_nacks_total{code=CHANNEL_CLOSED} went %v → %v, want +1", before, after)
	}

	// A plain request of the same session is still served by the live replica.
	cl.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami"}`)}, func(e *envelope.Envelope) {
		e.SID, e.To, e.ReplyTo, e.RType = envelope.SecureDigest(cl.path), "math@fame.fabric", "__rpc__x@"+cl.path, envelope.RTypeReply
	})
	if _, err := readFrame(other, envelope.TypeData, 2*time.Second); err != nil {
		t.Fatalf("the live replica did not get the next request: %v", err)
	}
}

// readFrame reads envelopes until one of frame type ft arrives or d passes.
func readFrame(p *rawPeer, ft string, d time.Duration) (*envelope.Envelope, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errRawTimeout
		}
		e, err := p.read(left)
		if err != nil {
			return nil, err
		}
		if e.FrameType() == ft {
			return e, nil
		}
		if errors.Is(err, errRawTimeout) {
			return nil, err
		}
	}
}
