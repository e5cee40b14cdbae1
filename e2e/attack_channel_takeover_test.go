package e2e

import (
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestAttackChannelTakeover: a client opens a channel (SecureOpen, cid) through the math pool;
// the sentinel pins the channel to the replica it routed the open to. A hostile pool member
// then answers that cid itself with a SecureAccept, to pull the channel's traffic (and the
// client's key agreement) to itself. The accept is dropped, not forwarded, and the attacker
// hears CHANNEL_TAKEOVER on its __sys__ inbox; the refusal is counted.
func TestAttackChannelTakeover(t *testing.T) {
	ap := profileOpen
	f := newFabric(t, ap.env)
	f.startReplica("r1", "*.fame.fabric", nil, ap.mod(nil))
	f.startReplica("r2", "*.fame.fabric", nil, ap.mod(nil))
	client := f.sdkClient(ap, "client1")
	pinned := whoami(t, client)
	servesTen(t, client, pinned)

	c := dialRaw(t, f, "rawclient", nil)
	c.attach()
	cid := envelope.NewID()
	c.sendFrame(&envelope.SecureOpen{CID: cid, EphPub: "AAAA", Alg: "CHACHA20P1305"}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo = "math@fame.fabric", "__sys__@"+c.path
	})
	// A call on the same connection after the open: once it is answered, the open was routed
	// (the sentinel handles a connection's envelopes in order) and the channel is bound.
	req := c.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)
	for {
		e := c.recv()
		if e.FrameType() == envelope.TypeData && e.CorrID == req.CorrID {
			break
		}
	}

	m := newHostile(t, f, ap, "mallory")
	if ack := m.attachAs("*.fame.fabric"); !ack.OK {
		t.Fatalf("attach: %+v", ack)
	}
	if b := m.bindAs("math@*.fame.fabric"); !b.OK {
		t.Fatalf("pool bind: %+v", b)
	}
	acc := m.newEnv(&envelope.SecureAccept{Ack: envelope.Ack{OK: true}, CID: cid, EphPub: "AAAA", Alg: "CHACHA20P1305"})
	acc.To = "__sys__@" + c.path
	m.sendAs(acc)
	m.expectSysNack("CHANNEL_TAKEOVER", acc.ID)
	if got := f.refusals(t, "channel_takeover"); got != 1 {
		t.Fatalf("refusals{channel_takeover} %v, want 1", got)
	}
	c.neverSees(acc.ID, 500*time.Millisecond)
	servesTen(t, client, pinned)
}
