package e2e

import (
	"testing"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

// TestAttackSystemIDPathEscape: a system id with an escaped path separator would give the
// attacker a path inside another node's subtree (r1%2Fx → /<sentinel>/r1/x) and with it the
// right to bind and announce keys there. Refused with INVALID_SYSTEM_ID.
func TestAttackSystemIDPathEscape(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			f.startReplica("r1", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			for i, c := range []struct{ url, id string }{
				{"r1%2Fx", "r1/x"},     // %2F unescapes to a separator
				{"r1%252Fx", "r1%2Fx"}, // double escaping is not decoded twice
				{"r1%5Cx", `r1\x`},     // backslash
			} {
				m := newHostile(t, f, ap, c.url)
				ack := m.attachAck(func(na *envelope.NodeAttach) { na.SystemID = c.id; na.Keys = m.keys() }, "*.fame.fabric")
				if ack.OK || ack.Code != "INVALID_SYSTEM_ID" {
					t.Fatalf("%s: attach %+v", c.url, ack)
				}
				m.expectClosed(websocket.StatusPolicyViolation, "INVALID_SYSTEM_ID")
				if got := f.refusals(t, "system_id_invalid"); got != float64(i+1) {
					t.Fatalf("system_id_invalid counter %v, want %d", got, i+1)
				}
			}
			servesTen(t, client, "r1")
		})
	}
}
