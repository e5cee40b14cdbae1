package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLeaderLoss runs its own three servers (the shared ones must stay
// whole). Phase 1 crashes the stream leader of the bindings bucket: the two
// survivors keep answering lookups from their LRUs without blocking, and
// writes resume once Raft has elected a new leader (the stall is
// reported). Phase 2 restarts the crashed member from its data directory
// and then stops the new leader with Close (lame duck): leadership moves
// before it goes, and the write stall is reported for comparison.
func TestLeaderLoss(t *testing.T) {
	t.Parallel() // mostly waiting: runs beside the other slow ones
	tc := startCluster(t, t.TempDir(), "kill", 3)
	defer tc.close()
	stream := "KV_" + BindingsBucket("kill")

	const n = 200
	done := make(chan Result, n)
	for i := range n {
		tc.members[0].Store.Create(Session, fmt.Sprintf("k%d", i), Binding{Replica: "r1", Sentinel: "s0"}, func(r Result) { done <- r })
	}
	for range n {
		if r := <-done; !r.Won {
			t.Fatalf("seed write: %+v", r)
		}
	}
	for _, m := range tc.members {
		eventually(t, 5*time.Second, "seed bindings everywhere", func() bool {
			b, ok := m.Store.Lookup(Session, fmt.Sprintf("k%d", n-1))
			return ok && b.Replica == "r1"
		})
	}

	phase := func(name string, stop func(i int)) {
		from := 0
		for tc.members[from] == nil {
			from++
		}
		leader := tc.leaderOf(t, from, stream)
		leaderID := tc.members[leader].Config.SentinelID
		var survivors []*Member
		for i, m := range tc.members {
			if i != leader && m != nil {
				survivors = append(survivors, m)
			}
		}
		// Lookups hammer both survivors throughout; each must hit.
		var lookups, misses atomic.Int64
		var worst atomic.Int64
		quit := make(chan struct{})
		var wg sync.WaitGroup
		for _, m := range survivors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-quit:
						return
					default:
					}
					start := time.Now()
					b, ok := m.Store.Lookup(Session, fmt.Sprintf("k%d", i%n))
					d := int64(time.Since(start))
					for {
						w := worst.Load()
						if d <= w || worst.CompareAndSwap(w, d) {
							break
						}
					}
					lookups.Add(1)
					if !ok || b.Replica != "r1" {
						misses.Add(1)
					}
					if i%64 == 0 {
						time.Sleep(100 * time.Microsecond) // leave the CPU to the election
					}
				}
			}()
		}
		t0 := time.Now()
		stopped := make(chan struct{})
		go func() { stop(leader); close(stopped) }()
		// Writes from a survivor, one at a time, until one is confirmed;
		// a write that fails (WriteTimeout) is retried with a new key.
		var stall time.Duration
		var failed, maxWrite time.Duration
		for attempt := 0; ; attempt++ {
			if time.Since(t0) > 60*time.Second {
				t.Fatalf("%s: writes did not resume within 60s", name)
			}
			res := make(chan Result, 1)
			ws := time.Now()
			survivors[0].Store.Create(Session, fmt.Sprintf("%s-w%d", name, attempt), Binding{Replica: "r2", Sentinel: survivors[0].Config.SentinelID}, func(r Result) { res <- r })
			r := <-res
			maxWrite = max(maxWrite, time.Since(ws))
			if r.Won {
				stall = time.Since(t0)
				break
			}
			failed += time.Since(ws)
		}
		<-stopped
		close(quit)
		wg.Wait()
		if lookups.Load() == 0 || misses.Load() != 0 {
			t.Fatalf("%s: %d lookups, %d missed during the stall", name, lookups.Load(), misses.Load())
		}
		t.Logf("%s (leader %s): first confirmed write %v after the stop (slowest write %v); %d lookups on the survivors meanwhile, 0 missed, slowest %v",
			name, leaderID, stall.Round(time.Millisecond), maxWrite.Round(time.Millisecond),
			lookups.Load(), time.Duration(worst.Load()))
		// The write made after the failover reaches the other survivor.
		key := fmt.Sprintf("%s-check", name)
		survivors[0].Store.Create(Session, key, Binding{Replica: "r3", Sentinel: survivors[0].Config.SentinelID}, nil)
		vis := eventually(t, 10*time.Second, name+": post-failover write visible on the other survivor", func() bool {
			b, ok := survivors[1].Store.Lookup(Session, key)
			return ok && b.Replica == "r3" && b.Revision != 0
		})
		t.Logf("%s: a write made after the failover visible on the other survivor after %v (%v after the stop)",
			name, vis.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	}

	var crashed int
	var crashedID string
	phase("crash", func(i int) { crashed, crashedID = i, tc.members[i].Config.SentinelID; tc.kill(i) })
	// The survivors' servers saw the crashed server's routes close: their
	// verdict names that evidence, not only the silence.
	for _, m := range tc.members {
		if m == nil {
			continue
		}
		eventually(t, 10*time.Second, crashedID+" down on "+m.Config.SentinelID, func() bool { return m.Bus.State(crashedID) == PeerDown })
		if n := testutil.ToFloat64(m.Metrics.downs.WithLabelValues("route_closed")); n < 1 {
			t.Errorf("%s: down verdicts on a closed route %v (silent %v), want the crash of %s counted",
				m.Config.SentinelID, n, testutil.ToFloat64(m.Metrics.downs.WithLabelValues("silent")), crashedID)
		}
	}

	// Restart the crashed member from its data directory.
	m, err := Open(tc.config(crashed), testLogger(), NewMetrics())
	if err != nil {
		t.Fatalf("restart %d: %v", crashed, err)
	}
	tc.members[crashed] = m
	tc.waitReady(t)
	eventually(t, 20*time.Second, "restarted member caught up", func() bool {
		b, ok := m.Store.Lookup(Session, "crash-check")
		return ok && b.Replica == "r3"
	})
	phase("lame-duck", func(i int) {
		tc.members[i].Close()
		tc.members[i] = nil
	})
}
