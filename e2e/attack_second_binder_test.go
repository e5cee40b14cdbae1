package e2e

import "testing"

// TestAttackSecondExactBinder: a node binds the exact address another live node serves, to
// take its traffic (exact routes were last-writer-wins). Refused with BIND_CONFLICT.
func TestAttackSecondExactBinder(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			f.startReplica("v1", "fame.fabric", nil, ap.mod(nil)) // binds math@fame.fabric exactly
			client := f.sdkClient(ap, "client1")
			servesTen(t, client, "v1")

			m := newHostile(t, f, ap, "mallory")
			if ack := m.attachAs("fame.fabric"); !ack.OK {
				t.Fatalf("attach: %+v", ack)
			}
			ack := m.bindAs("math@fame.fabric")
			if ack.OK || ack.Code != "BIND_CONFLICT" {
				t.Fatalf("second exact bind: %+v", ack)
			}
			if got := f.refusals(t, "bind_conflict"); got != 1 {
				t.Fatalf("bind_conflict counter %v", got)
			}
			servesTen(t, client, "v1")
		})
	}
}
