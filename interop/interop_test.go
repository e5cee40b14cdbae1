//go:build interop

package interop

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	pool  = "MATH_LOGICAL=*.fame.fabric"
	exact = "MATH_LOGICAL=fame.fabric"
)

// TestInterop runs every case. The 35 s idle case runs beside the others (both groups are
// parallel); inside "main" the cases run one after another, which keeps the 2-core machine from
// turning timing into flakiness.
func TestInterop(t *testing.T) {
	t.Run("long", func(t *testing.T) {
		t.Parallel()
		t.Run("6_idle_agent_heartbeats", testIdleAgentHeartbeats)
	})
	t.Run("main", func(t *testing.T) {
		t.Parallel()
		t.Run("0_ts_reference_sanity", testTSReferenceSanity)
		t.Run("1_ts_client_fame_sentinel_go_replicas", testTSClientGoReplicas)
		t.Run("2_go_client_fame_sentinel_ts_replicas", testGoClientTSReplicas)
		t.Run("3_ts_client_fame_sentinel_ts_agent_delivery", testDeliveryProfiles)
		t.Run("4_go_peers_ts_sentinel", testGoPeersTSSentinel)
		t.Run("5_stickiness", testStickiness)
		t.Run("7_replica_killed_between_calls", testReplicaKilled)
		t.Run("8_concurrent_callers", testConcurrentCallers)
		t.Run("9_gated_oauth2_ts_peers", testGatedOAuth2)
		t.Run("9b_gated_oauth2_go_and_ts_peers", testGatedOAuth2Mixed)
		t.Run("10_overlay_ts_peers", testOverlayTSPeers)
		t.Run("11_overlay_ts_client_go_replicas", testOverlayTSClientGoReplicas)
		t.Run("12_overlay_go_client_ts_replicas", testOverlayGoClientTSReplicas)
	})
}

// Case 0: the reference peers against each other (TS sentinel, two TS replicas, TS client). If
// this fails, the Node side of the suite is broken, not fame-go.
func testTSReferenceSanity(t *testing.T) {
	c := newCase(t)
	port := c.tsSentinel()
	c.tsAgent("ts-math-1", port, pool)
	c.tsAgent("ts-math-2", port, pool)
	cl := c.tsClient("ts-client", port, "WHOAMI=10", "CONCURRENCY=20")
	checkMath(t, cl, 1)
	counts := checkWhoami(t, cl, 10, "ts-math-1", "ts-math-2")
	requireLine(t, cl, "concurrent 20 ok")
	t.Logf("reference sentinel spread: %s", formatCounts(counts))
}

// Case 1: TS client → fame sentinel → two Go math replicas in the *.fame.fabric pool.
func testTSClientGoReplicas(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel()
	c.goAgent("go-math-1", port, pool)
	c.goAgent("go-math-2", port, pool)
	cl := c.tsClient("ts-client", port, "WHOAMI=4")
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "go-math-1", "go-math-2")
}

// Case 2: Go client → fame sentinel → two TS math replicas (distinct FAME_NODE_ID_SALT).
func testGoClientTSReplicas(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel()
	c.tsAgent("ts-math-1", port, pool)
	c.tsAgent("ts-math-2", port, pool)
	cl := c.goClient("go-client", port, []string{"-whoami", "4"})
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "ts-math-1", "ts-math-2")
}

// Case 3: TS client → fame sentinel → one TS agent bound exactly, per delivery profile.
func testDeliveryProfiles(t *testing.T) {
	for _, profile := range []string{"at-most-once", "at-least-once"} {
		t.Run(profile, func(t *testing.T) {
			c := newCase(t)
			delivery := "FAME_DELIVERY_PROFILE=" + profile
			port := c.fameSentinel(delivery)
			c.tsAgent("ts-math", port, exact, delivery)
			cl := c.tsClient("ts-client", port, delivery, "WHOAMI=2")
			checkMath(t, cl, 1)
			checkWhoami(t, cl, 2, "ts-math")
		})
	}
}

// Case 4: our Go client and Go agent against the reference TS sentinel.
func testGoPeersTSSentinel(t *testing.T) {
	for _, logical := range []string{exact, pool} {
		t.Run(strings.TrimPrefix(logical, "MATH_LOGICAL="), func(t *testing.T) {
			c := newCase(t)
			port := c.tsSentinel()
			c.goAgent("go-math", port, logical)
			cl := c.goClient("go-client", port, []string{"-whoami", "2"})
			checkMath(t, cl, 1)
			checkWhoami(t, cl, 2, "go-math")
		})
	}
}

// Case 5: 40 whoami calls from one TS client session through fame sentinel, two TS replicas.
func testStickiness(t *testing.T) {
	const calls = 40
	replicas := []string{"ts-math-1", "ts-math-2"}
	start := func(c *caseEnv, sentinelEnv ...string) int {
		port := c.fameSentinel(sentinelEnv...)
		for _, r := range replicas {
			c.tsAgent(r, port, pool)
		}
		return port
	}

	t.Run("sticky_by_default", func(t *testing.T) {
		c := newCase(t)
		port := start(c)
		cl := c.tsClient("ts-client", port, fmt.Sprintf("WHOAMI=%d", calls))
		checkMath(t, cl, 1)
		counts := checkWhoami(t, cl, calls, replicas...)
		if len(counts) != 1 {
			t.Errorf("one session spread over replicas with stickiness on: %s", formatCounts(counts))
		}
		t.Logf("whoami: %s", formatCounts(counts))
	})

	t.Run("round_robin_without_stickiness", func(t *testing.T) {
		c := newCase(t)
		port := start(c, "FAME_STICKINESS=off", "FAME_LOAD_BALANCING=round_robin")
		cl := c.tsClient("ts-client", port, fmt.Sprintf("WHOAMI=%d", calls))
		checkMath(t, cl, 1)
		counts := checkWhoami(t, cl, calls, replicas...)
		for _, r := range replicas {
			if counts[r] != calls/2 {
				t.Errorf("round robin over 2 replicas: %s, want %d each", formatCounts(counts), calls/2)
				break
			}
		}
	})

	t.Run("two_sticky_sessions", func(t *testing.T) {
		c := newCase(t)
		port := start(c)
		const each = 10
		a := c.startTSClient("ts-client-a", port, fmt.Sprintf("WHOAMI=%d", each))
		b := c.startTSClient("ts-client-b", port, fmt.Sprintf("WHOAMI=%d", each))
		c.requireExit0(a, clientTimeout)
		c.requireExit0(b, clientTimeout)
		for _, cl := range []*proc{a, b} {
			checkMath(t, cl, 1)
			counts := checkWhoami(t, cl, each, replicas...)
			if len(counts) != 1 {
				t.Errorf("%s: session spread over replicas with stickiness on: %s", cl.name, formatCounts(counts))
			}
			// Two sessions may or may not share a replica; only each session's own stickiness is required.
			t.Logf("%s: %s", cl.name, formatCounts(counts))
		}
	})
}

// Case 6: a TS agent idle for 35 s stays attached (its heartbeats are acknowledged), then answers.
// The client attaches at the same time and idles too, so both peers' heartbeats are exercised.
func testIdleAgentHeartbeats(t *testing.T) {
	t.Parallel()
	const idle = 35 * time.Second
	c := newCase(t)
	port := c.fameSentinel()
	debug := "FAME_LOG_LEVEL=debug" // the runtime logs received_heartbeat_ack at debug level
	agent := c.tsAgent("ts-math", port, exact, debug)
	readyAt := time.Now()
	cl := c.startTSClient("ts-client", port, debug, fmt.Sprintf("SLEEP_BEFORE_MS=%d", idle.Milliseconds()))
	c.requireExit0(cl, idle+clientTimeout)
	if since := time.Since(readyAt); since < idle {
		t.Fatalf("client finished %v after the agent was ready, want ≥ %v of idle time", since, idle)
	}
	checkMath(t, cl, 1)
	if agent.exited() {
		t.Fatalf("agent exited during the idle period: %v", agent.waitErr)
	}
	// Peers send a heartbeat every 15 s: 35 s of idle time holds at least two.
	for _, p := range []*proc{agent, cl} {
		errs := p.errLines()
		if n := countContaining(errs, "received_heartbeat_ack"); n < 2 {
			t.Errorf("%s: %d heartbeat acks received in %v idle, want ≥ 2", p.name, n, idle)
		}
		for _, bad := range []string{"missed heartbeat", "reconnected_to_upstream"} {
			if n := countContaining(errs, bad); n > 0 {
				t.Errorf("%s: %d log lines with %q: the link did not stay up", p.name, n, bad)
			}
		}
	}
}

// Case 7: the replica a session sticks to is killed between two rounds of calls in that session;
// the next round succeeds on the other replica.
func testReplicaKilled(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel()
	replicas := map[string]*proc{
		"ts-math-1": c.tsAgent("ts-math-1", port, pool),
		"ts-math-2": c.tsAgent("ts-math-2", port, pool),
	}
	cl := c.startTSClient("ts-client", port, "WHOAMI=1", "REPEAT=2", "REPEAT_GAP_MS=5000")
	line, err := cl.waitLine(clientTimeout, "the first whoami line", func(l string) bool {
		return strings.HasPrefix(l, "whoami = ")
	})
	if err != nil {
		t.Fatal(err)
	}
	first := strings.TrimPrefix(line, "whoami = ")
	victim, ok := replicas[first]
	if !ok {
		t.Fatalf("first whoami answered %q, not one of the replicas", first)
	}
	victim.signal(syscall.SIGKILL)
	if _, err := victim.waitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s after the first round", first)
	c.requireExit0(cl, clientTimeout)
	checkMath(t, cl, 2)
	names := whoamis(cl)
	if len(names) != 2 {
		t.Fatalf("whoami answers %v, want 2", names)
	}
	if names[1] == first {
		t.Errorf("second round answered by killed replica %s", first)
	}
	if _, ok := replicas[names[1]]; !ok {
		t.Errorf("second round answered by %q, not one of the replicas", names[1])
	}
}

// Case 8: 100 concurrent TS callers and 100 concurrent Go callers at once through fame sentinel,
// to a pool of one TS and one Go replica.
func testConcurrentCallers(t *testing.T) {
	const n = 100
	c := newCase(t)
	port := c.fameSentinel()
	c.tsAgent("ts-math", port, pool)
	c.goAgent("go-math", port, pool)
	ts := c.startTSClient("ts-client", port, fmt.Sprintf("CONCURRENCY=%d", n))
	gc := c.startGoClient("go-client", port, []string{"-concurrency", fmt.Sprint(n)})
	c.requireExit0(ts, clientTimeout)
	c.requireExit0(gc, clientTimeout)
	for _, cl := range []*proc{ts, gc} {
		checkMath(t, cl, 1)
		requireLine(t, cl, fmt.Sprintf("concurrent %d ok", n))
	}
}
