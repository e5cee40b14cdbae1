package e2e

import (
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestAttackClusterBindShadowsRemotePool: the math@*.fame.fabric pool is served by r1, attached
// to sentinel s1. An attacker node attached to s0 binds math@fame.fabric exactly (an exact
// route would win over the pool cluster-wide), math@eu.fame.fabric, and the narrower pool
// math@*.eu.fame.fabric, to divert the pool's calls to itself. Every bind is refused
// BIND_CONFLICT on s0 and counted; a real client on s0 is still served by r1, and the attacker
// receives no call.
func TestAttackClusterBindShadowsRemotePool(t *testing.T) {
	cf := startCluster(t, 2, "2s")
	cf.procs[1].startReplica("r1", "*.fame.fabric", nil, nil)
	cf.waitReplicas(1)
	client := cf.procs[0].connect(cf.clientConfig(0, false))
	servesTen(t, client, "r1")

	f := cf.procs[0].fabric
	m := dialRaw(t, f, "mallory", nil)
	m.attach("*.fame.fabric")
	for i, addr := range []string{"math@fame.fabric", "math@eu.fame.fabric", "math@*.eu.fame.fabric"} {
		ack := m.bind(addr)
		if ack.OK || ack.Code != "BIND_CONFLICT" {
			t.Fatalf("shadowing bind of %s on s0: %+v", addr, ack)
		}
		if got := f.refusals(t, "bind_conflict"); got != float64(i+1) {
			t.Fatalf("bind_conflict counter %v, want %d", got, i+1)
		}
	}
	servesTen(t, client, "r1")
	if got := whoamiAt(t, client, "math@eu.fame.fabric"); got != "r1" {
		t.Fatalf("math@eu.fame.fabric answered by %q, want r1", got)
	}
	if e, err := m.read(200 * time.Millisecond); err == nil && e.FrameType() == envelope.TypeData {
		t.Fatalf("the attacker received a call: %s", e.Frame)
	}
}
