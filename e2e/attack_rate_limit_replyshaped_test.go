package e2e

import (
	"encoding/json"
	"path"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// TestAttackRateLimitReplyShaped: a caller dresses its calls as replies (a Data with a corrId
// and a replyTo but no reply rtype, sent to the replica's physical path), which a node runs
// and answers all the same. The sentinel counts as a reply only what answers a request it
// routed to the sender, so these calls are limited like any other: past the burst they are
// nacked RATE_LIMITED and counted, and the replica keeps serving real clients.
func TestAttackRateLimitReplyShaped(t *testing.T) {
	const burst, calls = 12, 80 // the burst lets the victim's ten calls through
	f := newFabric(t, map[string]string{"FAME_RATE_LIMIT_IDENTITY": "1", "FAME_RATE_LIMIT_IDENTITY_BURST": "12"})
	f.startReplica("rs-replica", "fame.fabric", nil, nil)
	attacker := dialRaw(t, f, "rs-attacker", nil)
	attacker.attach()
	target := "math@" + path.Dir(attacker.path) + "/rs-replica"
	before := f.metric(t, "fame_rate_limited_total", `kind="identity"`)

	tally := collect(attacker, calls, 30e9)
	for i := 0; i < calls; i++ {
		attacker.sendFrame(&envelope.Data{Payload: json.RawMessage(addCall)}, func(e *envelope.Envelope) {
			e.To, e.ReplyTo = target, "__rpc__x@"+attacker.path // no rtype: "not a request"
		})
	}
	<-tally.finished
	t.Logf("%d reply-shaped calls to %s: %d served, %d nacked RATE_LIMITED, other %v", calls, target, tally.served, tally.limited, tally.other)
	if len(tally.other) > 0 {
		t.Fatalf("unexpected answers: %v", tally.other)
	}
	if tally.served+tally.limited != calls {
		t.Fatalf("%d served + %d nacked of %d: some were neither", tally.served, tally.limited, calls)
	}
	// At 1 call/s the sender gets its burst and at most a few more while it sends.
	if tally.served > burst+3 {
		t.Fatalf("%d reply-shaped calls served past a burst of %d: they escape the rate limit", tally.served, burst)
	}
	if got := f.metric(t, "fame_rate_limited_total", `kind="identity"`) - before; got != float64(tally.limited) {
		t.Fatalf("fame_rate_limited_total{identity} moved by %v, want %d", got, tally.limited)
	}
	servesTen(t, f.connect(f.nodeConfig()), "rs-replica")
}
