package e2e

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

var tsField = regexp.MustCompile(`"ts":"[^"]*"`)

// rewriteTS sets the ts of a signed envelope's bytes to ts: ts is not in the signed bytes
// (wire compatibility with the reference), so the signature still verifies.
func rewriteTS(t *testing.T, b []byte, ts time.Time) []byte {
	t.Helper()
	if !tsField.Match(b) {
		t.Fatalf("no ts in %s", b)
	}
	return tsField.ReplaceAll(b, []byte(`"ts":"`+ts.UTC().Format("2006-01-02T15:04:05.000Z")+`"`))
}

// TestAttackReplayFutureFlood: a signed raw peer floods the replica with ids dated 50 s in the
// future (inside the allowed skew), more than the replica's replay cache holds. Before, the
// guard's global eviction floor then rose past "now" and every honest sender's envelopes were
// refused STALE; the floor is now per sender and never past the clock, so only the flooder
// can be refused and the SDK client is still served.
func TestAttackReplayFutureFlood(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay"})
	replica := f.startReplica("replica1", "*.fame.fabric", nil, func(c *node.Config) {
		c.SecurityProfile, c.ReplayWindow, c.ReplayCacheSize = "overlay", time.Minute, 16
	})
	ccfg := f.nodeConfig()
	ccfg.SecurityProfile = "overlay"
	client := f.connect(ccfg)

	p := newSignedRaw(t, f, "flooder")
	for range 40 {
		e := p.frame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)})
		e.To, e.ReplyTo, e.RType = mathagent.Address, "__rpc__x@"+p.path, envelope.RTypeReply
		e.TS = time.Now().Add(50 * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
		p.signed(e)
	}
	// The flood is processed in order on the replica's session; one fresh request of the
	// flooder after it marks the end (answered or not).
	p.request(mathagent.Address, "whoami")
	waitUntil(t, 10*time.Second, "flood answered", func() bool {
		return p.next(envelope.TypeData, 2*time.Second) == nil
	})
	// The SDK client (another sender) is served: none of its envelopes is refused stale.
	before := replica.Refusals()[node.RefusedStale]
	callsServed(t, client, "replica1")
	if n := replica.Refusals()[node.RefusedStale]; n != before {
		t.Fatalf("%d envelopes refused stale during the honest calls", n-before)
	}
}
