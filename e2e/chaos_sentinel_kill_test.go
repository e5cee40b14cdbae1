package e2e

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// TestCallInFlightWhenSentinelKilled: kill -9 of the sentinel while a call is in flight (it
// reached the replica, which holds it). Found by the chaos harness (#20): the SDK kept such a
// call waiting for its whole timeout for a reply that had died with the sentinel ("lost").
// Now an at-most-once caller is told at once (ErrConnectionLost, well before its 60 s
// timeout), and an at-least-once caller re-sends the call once a sentinel is back on the same
// port and gets the replica's answer.
func TestCallInFlightWhenSentinelKilled(t *testing.T) {
	// A fixed node id, as a restart on the same store has: the paths (and so the reply
	// addresses of requests in flight) stay the same.
	p := startSentinelProc(t, map[string]string{"FAME_NODE_ID": "KillSentinel001", "FAME_ADMIN_TOKEN": drainAdminToken})
	_, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	gatedReplica(t, p.fabric, "kill-gated", 0, started, release)

	type result struct {
		reply string
		err   error
	}
	// The callers re-attach only once the replica is back, so that the re-sent call finds
	// the pool (a caller back first would get NO_ROUTE, which is not what this test is about).
	gate := newDialGate()
	call := func(delivery string) <-chan result {
		c := p.nodeConfig()
		c.HTTPClient = gate.client()
		c.Delivery = delivery
		c.CallTimeout = 60 * time.Second // a timeout is the failure this test is about
		n := p.connect(c)
		out := make(chan result, 1)
		go func() {
			var r result
			r.err = n.Call(context.Background(), mathagent.Address, "gate", map[string]any{}, &r.reply)
			out <- r
		}()
		return out
	}
	amo, alo := call(node.AtMostOnce), call(node.AtLeastOnce)
	for range 2 {
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatal("the calls never reached the replica")
		}
	}
	gate.hold()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited

	select {
	case r := <-amo:
		if !errors.Is(r.err, node.ErrConnectionLost) {
			t.Fatalf("at-most-once call: reply %q, err %v; want ErrConnectionLost", r.reply, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the at-most-once call is still waiting 30 s after the sentinel died")
	}

	// A sentinel back on the same port; the replica and the caller re-attach, the caller
	// re-sends, and the replica's answer reaches it.
	p2 := startSentinelProc(t, map[string]string{"FAME_NODE_ID": "KillSentinel001", "FAME_ADMIN_TOKEN": drainAdminToken, "FAME_LISTENER_PORT": port})
	waitUntil(t, 20*time.Second, "the replica to re-attach", func() bool { return strings.Contains(getStats(p2.addr), "math@fame.fabric") })
	gate.release()
	releaseOnce.Do(func() { close(release) })
	select {
	case r := <-alo:
		if r.err != nil || r.reply != "passed" {
			t.Fatalf("at-least-once call: reply %q, err %v; want \"passed\"", r.reply, r.err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the at-least-once call got no answer 45 s after the sentinel came back")
	}
}
