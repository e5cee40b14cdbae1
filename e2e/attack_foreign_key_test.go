package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestAttackEnvelopeSignedByAnotherNode: under overlay a node replays an envelope that another
// node signed (here the victim replica's signed reply to one of the attacker's calls). Its
// signature is valid, but the key belongs to the victim's path, not to the connection that
// sent it: refused with FOREIGN_SIGNING_KEY. Open and gated carry no signatures, so the
// attack does not apply there.
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
	req := m.newEnv(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)})
	req.To, req.ReplyTo, req.RType = "math@fame.fabric", "__rpc__x@"+m.path, envelope.RTypeReply
	m.sendAs(req)
	var reply []byte
	deadline := time.Now().Add(10 * time.Second)
	for reply == nil && time.Now().Before(deadline) {
		select {
		case r := <-m.in:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if e, err := envelope.Decode(r.b); err == nil && e.FrameType() == envelope.TypeData && e.CorrID == req.CorrID {
				reply = r.b
			}
		case <-time.After(time.Until(deadline)):
		}
	}
	if reply == nil {
		t.Fatal("no signed reply from the victim")
	}
	before := f.metric(t, "fame_dropped_total", `reason="FOREIGN_SIGNING_KEY"`)
	if err := m.sendRaw(reply); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the replay to be refused", func() bool {
		return f.refusals(t, "foreign_key") == 1
	})
	if got := f.metric(t, "fame_dropped_total", `reason="FOREIGN_SIGNING_KEY"`); got != before+1 {
		t.Fatalf("dropped{FOREIGN_SIGNING_KEY} %v, want %v", got, before+1)
	}
	servesTen(t, client, "v1")
}
