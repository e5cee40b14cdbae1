package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
)

// TestAttackKeyAnnounceCaseVariant: a signed raw peer announces keys with
// {"physicalPath":"/victim","PhysicalPath":"<its own path>"}. encoding/json (case-insensitive,
// last wins) read its own path, so the sentinel's "only under your own path" check passed,
// while a TS requester's JSON.parse reads /victim from the same bytes, which the sentinel's
// rewrap forwarded under its own signature. Now the frame key scan refuses any key that folds
// to a frame field without being spelt as it: the sentinel closes the connection 1007
// malformed, logs it naming the peer and counts it in fame_malformed_total.
func TestAttackKeyAnnounceCaseVariant(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay"})
	withProfile := func(c *node.Config) { c.SecurityProfile = "overlay" }
	f.startReplica("replica1", "*.fame.fabric", nil, withProfile)
	ccfg := f.nodeConfig()
	ccfg.SecurityProfile = "overlay"
	client := f.connect(ccfg)

	before := f.metric(t, "fame_malformed_total")
	p := newSignedRaw(t, f, "mallory")
	e := p.frame(&envelope.KeyAnnounce{PhysicalPath: p.path, Keys: []json.RawMessage{}, Created: envelope.Now()})
	own := `"physicalPath":` + mustJSON(t, p.path)
	variant := `"physicalPath":"/replica1","PhysicalPath":` + mustJSON(t, p.path)
	frame := strings.Replace(string(e.Frame), own, variant, 1)
	if frame == string(e.Frame) {
		t.Fatalf("no physicalPath in %s", e.Frame)
	}
	e.Frame = json.RawMessage(frame)
	e.ReplyTo = "__sys__@" + p.path
	p.signed(e)
	p.expectClosed(websocket.StatusInvalidFramePayloadData, "letter case")
	if got := f.metric(t, "fame_malformed_total"); got != before+1 {
		t.Fatalf("fame_malformed_total %v -> %v, want +1", before, got)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "malformed envelope, closing") || !strings.Contains(logs, "peer=mallory") {
		t.Fatalf("no log line naming the attacker:\n%s", logs)
	}
	callsServed(t, client, "replica1")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
