package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// victimSignedReply has the attacker call the victim replica and returns the victim's signed
// reply, raw: an envelope with a valid signature by a key that is not the attacker's.
func victimSignedReply(t *testing.T, m *hostile) (raw []byte, reply *envelope.Envelope) {
	t.Helper()
	req := m.newEnv(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)})
	req.To, req.ReplyTo, req.RType = "math@fame.fabric", "__rpc__x@"+m.path, envelope.RTypeReply
	m.sendAs(req)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case r := <-m.in:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if e, err := envelope.Decode(r.b); err == nil && e.FrameType() == envelope.TypeData && e.CorrID == req.CorrID {
				return r.b, e
			}
		case <-time.After(time.Until(deadline)):
		}
	}
	t.Fatal("no signed reply from the victim")
	return nil, nil
}

// TestAttackEnvelopeSignedByAnotherNode: under overlay a node replays an envelope that another
// node signed (here the victim replica's signed reply to one of the attacker's calls). Its
// signature is valid, but the key belongs to the victim's path, not to the connection that
// sent it: refused with FOREIGN_SIGNING_KEY, nacked to the sender's __sys__ inbox (the replay
// names no reply address) and counted. Open and gated carry no signatures, so the attack does
// not apply there.
func TestAttackEnvelopeSignedByAnotherNode(t *testing.T) {
	ap := profileOverlay
	f := newFabric(t, ap.env)
	f.startReplica("v1", "fame.fabric", nil, ap.mod(nil))
	client := f.sdkClient(ap, "client1")
	servesTen(t, client, "v1")

	m := newHostile(t, f, ap, "mallory")
	if ack := m.attachAs(); !ack.OK {
		t.Fatalf("attach: %+v", ack)
	}
	raw, reply := victimSignedReply(t, m)
	before := f.metric(t, "fame_nacks_total", `code="FOREIGN_SIGNING_KEY"`)
	if err := m.sendRaw(raw); err != nil {
		t.Fatal(err)
	}
	m.expectSysNack("FOREIGN_SIGNING_KEY", reply.ID)
	if got := f.refusals(t, "foreign_key"); got != 1 {
		t.Fatalf("refusals{foreign_key} %v, want 1", got)
	}
	if got := f.metric(t, "fame_nacks_total", `code="FOREIGN_SIGNING_KEY"`); got != before+1 {
		t.Fatalf("nacks{FOREIGN_SIGNING_KEY} %v, want %v", got, before+1)
	}
	servesTen(t, client, "v1")
}

// TestAttackForeignKeyRelayedByPeer: the same replay sent on a connection attached as origin
// "peer" (/fame/v1/attach/ws/peer/<id>, open to anyone who may attach). A peer's own subtree
// keys sit under its path, so a peer is held to the same rule: refused with
// FOREIGN_SIGNING_KEY on the wire, counted, and the replay is not delivered.
func TestAttackForeignKeyRelayedByPeer(t *testing.T) {
	ap := profileOverlay
	f := newFabric(t, ap.env)
	f.startReplica("v1", "fame.fabric", nil, ap.mod(nil))
	client := f.sdkClient(ap, "client1")
	servesTen(t, client, "v1")

	m := newHostile(t, f, ap, "mallory")
	if ack := m.attachAs(); !ack.OK {
		t.Fatalf("attach: %+v", ack)
	}
	raw, reply := victimSignedReply(t, m)

	p := dialRawPeer(t, f, "mpeer")
	if ack := p.attachAck(func(na *envelope.NodeAttach) { na.OriginType = "peer" }); !ack.OK {
		t.Fatalf("peer attach refused: %+v", ack)
	}
	if err := p.sendRaw(raw); err != nil {
		t.Fatal(err)
	}
	p.expectSysNack("FOREIGN_SIGNING_KEY", reply.ID)
	if got := f.refusals(t, "foreign_key"); got != 1 {
		t.Fatalf("refusals{foreign_key} %v, want 1", got)
	}
	m.neverSees(reply.ID, 500*time.Millisecond)
	servesTen(t, client, "v1")
}
