package e2e

import (
	"testing"

	"github.com/coder/websocket"
)

// TestAttackSystemIDTakeover: attaching with the system id of a live replica used to evict it
// and inherit its path, pool slot and keys. While the replica answers the liveness probe, a
// newcomer that cannot prove it owns the id is refused with SYSTEM_ID_IN_USE.
func TestAttackSystemIDTakeover(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			f.startReplica("r1", "*.fame.fabric", nil, ap.mod(nil))
			f.startReplica("r2", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			servesTen(t, client, "r1", "r2")

			m := newHostile(t, f, ap, "r1")
			ack := m.attachAs("*.fame.fabric")
			if ack.OK || ack.Code != "SYSTEM_ID_IN_USE" {
				t.Fatalf("take-over attach: %+v", ack)
			}
			m.expectClosed(websocket.StatusPolicyViolation, "SYSTEM_ID_IN_USE")
			if got := f.refusals(t, "system_id_in_use"); got != 1 {
				t.Fatalf("system_id_in_use counter %v", got)
			}
			if n := f.poolSize(t, "math@*.fame.fabric"); n != 2 {
				t.Fatalf("pool has %d members after the attempt, want 2", n)
			}
			servesTen(t, client, "r1", "r2")
		})
	}
}
