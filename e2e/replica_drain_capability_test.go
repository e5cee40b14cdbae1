package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// TestReplicaDrainCapabilityRouting: a call routed by capability (no "to") does not go to a
// draining replica while another provider serves the capability. The replicas advertise
// fame.capability.agent; the first provider by system id (cap1) is drained.
func TestReplicaDrainCapabilityRouting(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken})
	f.startReplica("cap1", "*.fame.fabric", nil, nil)
	f.startReplica("cap2", "*.fame.fabric", nil, nil)
	caller := dialRaw(t, f, "capcaller", nil)
	caller.attach()
	call := func() string {
		t.Helper()
		req := caller.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)},
			func(e *envelope.Envelope) {
				e.SID, e.Capabilities = envelope.SecureDigest(caller.path), []string{"fame.capability.agent"}
				e.ReplyTo, e.RType = "__rpc__x@"+caller.path, envelope.RTypeReply
			})
		for {
			e := caller.recv()
			if e.CorrID != req.CorrID || e.FrameType() != envelope.TypeData {
				continue
			}
			var reply struct {
				Result string `json:"result"`
			}
			d := mustFrame(t, e).(*envelope.Data)
			if err := json.Unmarshal(d.Payload, &reply); err != nil {
				t.Fatal(err)
			}
			return reply.Result
		}
	}
	if who := call(); who != "cap1" {
		t.Fatalf("capability call before the drain answered by %q, want cap1 (first provider)", who)
	}
	if status, body := httpDo(t, f, http.MethodPost, "/admin/replicas/cap1/drain", drainAdminToken); status != http.StatusAccepted {
		t.Fatalf("POST drain: %d %s", status, body)
	}
	for i := 0; i < 5; i++ {
		if who := call(); who != "cap2" {
			t.Fatalf("capability call %d during the drain answered by %q, want cap2", i, who)
		}
	}
}
