package e2e

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// TestDrainStrictStack drains a sentinel of the default strict stack (strict-overlay, channel
// encryption, welcome + CA) under the reference example's load: clients looping fib_stream
// and whoami over their channels, and clients that streamed and left. The sentinel cannot
// read a sealed stream's final item, and the callers that left cannot be answered any more;
// neither may hold the drain until its timeout. It must end idle: every call that began
// before the drain answered, every later one nacked DRAINING, nothing abandoned.
func TestDrainStrictStack(t *testing.T) {
	const drainTimeout = 8 * time.Second
	st := newStack(t, stackOptions{drainTimeout: drainTimeout})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st.mathReplica(t, ctx, "replica1", nil)
	st.mathReplica(t, ctx, "replica2", nil)

	connect := func() *node.Node {
		t.Helper()
		cfg := st.clientConfig(nil, nil)
		cfg.CallTimeout = 30 * time.Second // a timeout would be a failure, not a slow pass
		n, err := node.Connect(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	// Callers that streamed over their channel and left: their replicas' last stream item
	// (sealed) and their departure are what a drain used to wait on until its timeout.
	for i := 0; i < 3; i++ {
		n := connect()
		if got, err := (mathClient{t: t, n: n}).fib(ctx); err != nil || got != "0 1 1 2 3 5 8 13 21 34" {
			t.Fatalf("fib_stream before leaving: %q, %v", got, err)
		}
		n.Close()
	}

	const loopers = 4
	type tally struct {
		ok     atomic.Int64 // read by the test while the looper runs
		nacked int
		bad    error
	}
	results := make([]tally, loopers)
	var wg sync.WaitGroup
	var loopNodes []*node.Node
	for i := 0; i < loopers; i++ {
		n := connect()
		loopNodes = append(loopNodes, n)
		c := mathClient{t: t, n: n}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			for {
				got, err := c.fib(ctx)
				if err == nil && got != "0 1 1 2 3 5 8 13 21 34" {
					err = errors.New("fib_stream: wrong items " + got)
				}
				if err == nil {
					var name string
					err = n.Call(ctx, mathagent.Address, "whoami", nil, &name)
				}
				var ne *node.NackError
				switch {
				case err == nil:
					r.ok.Add(1)
					continue
				case errors.As(err, &ne) && ne.Code == "DRAINING":
					r.nacked++
				default:
					r.bad = err
				}
				return
			}
		}()
	}
	// Let every looper complete some rounds (so that sealed streams ended just before the
	// drain), then drain.
	waitUntil(t, 30*time.Second, "every looper completed 3 rounds", func() bool {
		for i := range results {
			if results[i].ok.Load() < 3 {
				return false
			}
		}
		return true
	})
	drainStart := time.Now()
	if !st.sentinel.StartDrain("test") {
		t.Fatal("the drain did not start")
	}
	wg.Wait()
	for i := range results {
		r := &results[i]
		if r.bad != nil {
			t.Fatalf("looper %d after %d rounds: %v (want every call answered or nacked DRAINING)", i, r.ok.Load(), r.bad)
		}
		if r.nacked != 1 {
			t.Fatalf("looper %d: %d DRAINING nacks, want 1", i, r.nacked)
		}
	}
	var drainTook time.Duration
	select {
	case <-st.sentinel.Drained():
		drainTook = time.Since(drainStart)
	case <-time.After(drainTimeout + 20*time.Second):
		t.Fatal("the drain did not finish")
	}
	if got := st.metric(t, "fame_drains_total", `result="idle"`); got != 1 {
		t.Fatalf("fame_drains_total{result=idle} = %v (timeout %v): the drain waited for calls that had ended or whose callers had left",
			got, st.metric(t, "fame_drains_total", `result="timeout"`))
	}
	if got := st.metric(t, "fame_drain_refusals_total", `reason="abandoned"`); got != 0 {
		t.Fatalf("fame_drain_refusals_total{abandoned} = %v, want 0", got)
	}
	// Each looper, still attached, was told to re-open its channel wherever it attaches next.
	if got := st.metric(t, "fame_secure_close_sent_total"); got < loopers {
		t.Fatalf("fame_secure_close_sent_total = %v, want a SecureClose for each of the %d attached clients' channels", got, loopers)
	}
	// The clients were told to re-attach elsewhere; there is nowhere else, and closing them
	// must not wait on their reconnect attempts.
	closeStart := time.Now()
	closed := make(chan struct{})
	go func() {
		for _, n := range loopNodes {
			n.Close()
		}
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("closing the clients after the drain hangs")
	}
	t.Logf("clients closed %v after the drain", time.Since(closeStart))
	rounds := 0
	for i := range results {
		rounds += int(results[i].ok.Load())
	}
	t.Logf("%d rounds of fib_stream + whoami answered, %d loopers nacked DRAINING once each; drain result idle after %v", rounds, loopers, drainTook)
}
