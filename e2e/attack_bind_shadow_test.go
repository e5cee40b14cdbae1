package e2e

import (
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestAttackBindShadowsPool: a node allowed *.fame.fabric binds math@fame.fabric exactly while
// the math@*.fame.fabric pool is live, to divert the pool's calls to itself. Refused with
// BIND_CONFLICT; the pool keeps serving.
func TestAttackBindShadowsPool(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			f.startReplica("r1", "*.fame.fabric", nil, ap.mod(nil))
			f.startReplica("r2", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			servesTen(t, client, "r1", "r2")

			m := newHostile(t, f, ap, "mallory")
			if ack := m.attachAs("*.fame.fabric"); !ack.OK {
				t.Fatalf("attach: %+v", ack)
			}
			// The exact addresses, and a narrower pool: lookupPool picks the most specific
			// suffix, so math@*.eu.fame.fabric would take math@eu.fame.fabric's calls away from
			// the live math@*.fame.fabric pool.
			for i, addr := range []string{"math@fame.fabric", "math@eu.fame.fabric", "math@*.eu.fame.fabric"} {
				ack := m.bindAs(addr)
				if ack.OK || ack.Code != "BIND_CONFLICT" {
					t.Fatalf("shadowing bind of %s: %+v", addr, ack)
				}
				if got := f.refusals(t, "bind_conflict"); got != float64(i+1) {
					t.Fatalf("bind_conflict counter %v, want %d", got, i+1)
				}
			}
			servesTen(t, client, "r1", "r2")
			// A call to math@eu.fame.fabric still reaches the wider pool, not mallory.
			if got := whoamiAt(t, client, "math@eu.fame.fabric"); got != "r1" && got != "r2" {
				t.Fatalf("math@eu.fame.fabric answered by %q, want r1 or r2", got)
			}
			if e, err := m.read(200 * time.Millisecond); err == nil && e.FrameType() == envelope.TypeData {
				t.Fatalf("the attacker received a call: %s", e.Frame)
			}
			// Joining the wider pool itself is what a replica does, and is not refused.
			if ack := m.bindAs("math@*.fame.fabric"); !ack.OK {
				t.Fatalf("joining the pool: %+v", ack)
			}
		})
	}
}
