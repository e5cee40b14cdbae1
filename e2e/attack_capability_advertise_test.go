package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestAttackCapabilityAdvertiseOutsideGrant: capability routing delivers to the advertiser
// itself, so a node that advertises the agent capability for math@fame.fabric (a domain it
// was never granted) would receive calls meant for the math agents. Refused with UNAUTHORIZED
// like a bind outside its logicals; a capability call then finds no provider (nacked, not
// delivered to the attacker), and the pool keeps serving.
func TestAttackCapabilityAdvertiseOutsideGrant(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			f.startReplica("r1", "*.fame.fabric", nil, ap.mod(nil))
			f.startReplica("r2", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			servesTen(t, client, "r1", "r2")

			m := newHostile(t, f, ap, "mallory")
			if ack := m.attachAs("evil.example"); !ack.OK {
				t.Fatalf("attach: %+v", ack)
			}
			advertise := func(addr string) *envelope.CapabilityAdvertiseAck {
				t.Helper()
				e := m.newEnv(&envelope.CapabilityAdvertise{Address: addr, Capabilities: []string{"fame.capability.agent"}})
				e.ReplyTo, e.RType = "__sys__@"+m.path, envelope.RTypeAck
				m.sendAs(e)
				fr, _ := m.recv().DecodeFrame()
				ack, ok := fr.(*envelope.CapabilityAdvertiseAck)
				if !ok {
					t.Fatalf("want CapabilityAdvertiseAck, got %T", fr)
				}
				return ack
			}
			if ack := advertise("math@fame.fabric"); ack.OK || ack.Code != envelope.CodeUnauthorized {
				t.Fatalf("advertise outside the grant: %+v", ack)
			}
			if got := f.refusals(t, "advertise_unauthorized"); got != 1 {
				t.Fatalf("advertise_unauthorized counter %v, want 1", got)
			}

			// A capability call from another peer goes to a real agent (the replicas advertise the
			// agent capability); before the fix it went to mallory, the first provider by id.
			caller := newHostile(t, f, ap, "capcaller")
			if ack := caller.attachAs(); !ack.OK {
				t.Fatalf("caller attach: %+v", ack)
			}
			req := caller.newEnv(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)})
			req.Capabilities = []string{"fame.capability.agent"}
			req.ReplyTo, req.RType = "__rpc__x@"+caller.path, envelope.RTypeReply
			caller.sendAs(req)
			var reply struct {
				Result string `json:"result"`
			}
			if d, ok := mustFrame(t, caller.recv()).(*envelope.Data); !ok || json.Unmarshal(d.Payload, &reply) != nil ||
				(reply.Result != "r1" && reply.Result != "r2") {
				t.Fatalf("capability call: want an answer from r1 or r2, got %+v", d)
			}
			if e, err := m.read(200 * time.Millisecond); err == nil && e.FrameType() == envelope.TypeData {
				t.Fatalf("the attacker received a capability call: %s", e.Frame)
			}

			// Within its own grant the node may advertise an address it has bound; an address it
			// has not bound is not its own even inside the grant.
			if ack := advertise("svc@evil.example"); ack.OK || ack.Code != envelope.CodeUnauthorized {
				t.Fatalf("advertise of an unbound address: %+v", ack)
			}
			if ack := m.bindAs("svc@evil.example"); !ack.OK {
				t.Fatalf("bind inside the grant: %+v", ack)
			}
			if ack := advertise("svc@evil.example"); !ack.OK {
				t.Fatalf("advertise of its own binding: %+v", ack)
			}
			if got := f.refusals(t, "advertise_unauthorized"); got != 2 {
				t.Fatalf("advertise_unauthorized counter %v, want 2", got)
			}
			servesTen(t, client, "r1", "r2")
		})
	}
}

// TestAttackCapabilityShadowsReplica: a node granted *.fame.fabric advertises the agent
// capability at math@r1.fame.fabric, the address replica r1 advertises, to replace r1's entry
// (providers were keyed by address, last writer wins) and, sorting first by system id
// ("0mallory"), take r1's capability calls. Refused: the advertised address must be the
// node's own (its binding, participant@S or participant@<its id>.S of a pool *.S it is in, or
// under its path), and one node's entry never replaces another's. Also when the attacker has
// joined the pool. Capability calls keep reaching r1.
func TestAttackCapabilityShadowsReplica(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			f.startReplica("r1", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			servesTen(t, client, "r1")

			m := newHostile(t, f, ap, "0mallory")
			if ack := m.attachAs("*.fame.fabric"); !ack.OK {
				t.Fatalf("attach: %+v", ack)
			}
			advertise := func(addr string) *envelope.CapabilityAdvertiseAck {
				t.Helper()
				e := m.newEnv(&envelope.CapabilityAdvertise{Address: addr, Capabilities: []string{"fame.capability.agent"}})
				e.ReplyTo, e.RType = "__sys__@"+m.path, envelope.RTypeAck
				m.sendAs(e)
				ack, ok := mustFrame(t, m.recv()).(*envelope.CapabilityAdvertiseAck)
				if !ok {
					t.Fatal("want CapabilityAdvertiseAck")
				}
				return ack
			}
			if ack := advertise("math@r1.fame.fabric"); ack.OK || ack.Code != envelope.CodeUnauthorized {
				t.Fatalf("advertise at r1's address: %+v", ack)
			}
			if ack := m.bindAs("math@*.fame.fabric"); !ack.OK {
				t.Fatalf("pool join: %+v", ack)
			}
			if ack := advertise("math@r1.fame.fabric"); ack.OK || ack.Code != envelope.CodeUnauthorized {
				t.Fatalf("pool member advertising at r1's address: %+v", ack)
			}
			if got := f.refusals(t, "advertise_unauthorized"); got != 2 {
				t.Fatalf("advertise_unauthorized counter %v, want 2", got)
			}

			caller := newHostile(t, f, ap, "capcaller")
			if ack := caller.attachAs(); !ack.OK {
				t.Fatalf("caller attach: %+v", ack)
			}
			for i := 0; i < 3; i++ {
				req := caller.newEnv(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)})
				req.Capabilities = []string{"fame.capability.agent"}
				req.ReplyTo, req.RType = "__rpc__x@"+caller.path, envelope.RTypeReply
				caller.sendAs(req)
				var reply struct {
					Result string `json:"result"`
				}
				if d, ok := mustFrame(t, caller.recv()).(*envelope.Data); !ok || json.Unmarshal(d.Payload, &reply) != nil || reply.Result != "r1" {
					t.Fatalf("capability call %d: want r1's answer, got %+v", i, d)
				}
			}
			for {
				e, err := m.read(200 * time.Millisecond)
				if err != nil {
					break
				}
				if e.FrameType() == envelope.TypeData && len(e.Capabilities) > 0 {
					t.Fatalf("the attacker received a capability call: %s", e.Frame)
				}
			}
			// mallory leaves the pool (a raw peer does not answer calls); r1 keeps serving.
			un := m.newEnv(&envelope.AddressUnbind{Address: "math@*.fame.fabric"})
			un.ReplyTo, un.RType = "__sys__@"+m.path, envelope.RTypeAck
			m.sendAs(un)
			if _, ok := mustFrame(t, m.recv()).(*envelope.AddressUnbindAck); !ok {
				t.Fatal("want AddressUnbindAck")
			}
			servesTen(t, client, "r1")
		})
	}
}

func mustFrame(t *testing.T, e *envelope.Envelope) envelope.Frame {
	t.Helper()
	fr, err := e.DecodeFrame()
	if err != nil {
		t.Fatalf("decode frame %s: %v", e.Frame, err)
	}
	return fr
}
