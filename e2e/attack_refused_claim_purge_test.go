package e2e

import (
	"testing"

	"github.com/coder/websocket"
)

// TestAttackRefusedClaimPurgesSessions: a connection claiming a live replica's system id is
// refused (SYSTEM_ID_IN_USE), but its close used to run the replica-lost path for that id:
// the LIVE replica's pinned sessions were purged and their clients told to re-open their
// channels. Only the connection holding the id may purge its bindings now; the client stays
// pinned where it was.
func TestAttackRefusedClaimPurgesSessions(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			f.startReplica("r1", "*.fame.fabric", nil, ap.mod(nil))
			f.startReplica("r2", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			pinned := whoami(t, client)
			servesTen(t, client, pinned)
			bindings := f.metric(t, "fame_stickiness_bindings")
			if bindings < 1 {
				t.Fatalf("no session binding after the client's calls (%v)", bindings)
			}

			m := newHostile(t, f, ap, pinned)
			ack := m.attachAs("*.fame.fabric")
			if ack.OK || ack.Code != "SYSTEM_ID_IN_USE" {
				t.Fatalf("claim of %s: %+v", pinned, ack)
			}
			m.expectClosed(websocket.StatusPolicyViolation, "SYSTEM_ID_IN_USE")
			if got := f.refusals(t, "system_id_in_use"); got != 1 {
				t.Fatalf("system_id_in_use counter %v", got)
			}
			// The sentinel tears a connection down (connClosed) before it sends the close
			// frame, so by now a purge would have happened. Nothing of the live replica's
			// may have moved.
			if got := f.metric(t, "fame_stickiness_repins_total"); got != 0 {
				t.Fatalf("%v sessions re-pinned after a refused claim of %s", got, pinned)
			}
			if got := f.metric(t, "fame_secure_close_sent_total"); got != 0 {
				t.Fatalf("%v SecureClose sent after a refused claim of %s", got, pinned)
			}
			if got := f.metric(t, "fame_stickiness_bindings"); got != bindings {
				t.Fatalf("bindings %v after the refused claim, %v before", got, bindings)
			}
			servesTen(t, client, pinned)
		})
	}
}
