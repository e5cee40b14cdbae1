package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var runSeq atomic.Uint64

// key is a key unique to this test and run (-count=N reuses the cluster).
func key(t testing.TB, suffix ...any) string {
	return fmt.Sprintf("%s-%d-%s", t.Name(), runSeq.Add(1), fmt.Sprint(suffix...))
}

// TestBindingVisibleAcrossCluster: a binding created on s0 reaches s2's
// local LRU through the KV watch; the latency from Create to the watch
// event on s2 is reported (p50/p99 over 200 keys).
func TestBindingVisibleAcrossCluster(t *testing.T) {
	a, c := shared.members[0].Store, shared.members[2].Store
	const n = 200
	prefix := key(t) + "-"
	var mu sync.Mutex
	created := make(map[string]time.Time, n)
	seen := make(map[string]time.Time, n)
	stop := c.Watch(func(ev Event) {
		if ev.Kind != Session || ev.Deleted || len(ev.ID) <= len(prefix) || ev.ID[:len(prefix)] != prefix {
			return
		}
		mu.Lock()
		if _, ok := seen[ev.ID]; !ok {
			seen[ev.ID] = time.Now()
		}
		mu.Unlock()
	})
	defer stop()
	acks := make(chan time.Duration, n)
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		mu.Lock()
		created[id] = time.Now()
		mu.Unlock()
		start := time.Now()
		b, mine := a.Create(Session, id, Binding{Replica: "r1", Sentinel: "s0"}, func(r Result) {
			if r.Err != nil || !r.Won {
				t.Errorf("create %s: won=%v err=%v", id, r.Won, r.Err)
			}
			acks <- time.Since(start)
		})
		if !mine || b.Replica != "r1" {
			t.Fatalf("local create of a fresh key: %+v %v", b, mine)
		}
		// The local binding is in effect before the cluster confirms it.
		if got, ok := a.Lookup(Session, id); !ok || got.Replica != "r1" {
			t.Fatalf("lookup right after create: %+v %v", got, ok)
		}
		time.Sleep(2 * time.Millisecond) // paced: latency, not queueing, is measured
	}
	eventually(t, 10*time.Second, "all bindings seen on s2", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	var vis, ack []time.Duration
	mu.Lock()
	for id, at := range seen {
		vis = append(vis, at.Sub(created[id]))
	}
	mu.Unlock()
	for range n {
		ack = append(ack, <-acks)
	}
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		b, ok := c.Lookup(Session, id)
		if !ok || b.Replica != "r1" || b.Sentinel != "s0" || b.Revision == 0 {
			t.Fatalf("s2 lookup %s: %+v %v", id, b, ok)
		}
	}
	t.Logf("R3 create ack on s0: p50 %v p99 %v; visible on s2 via watch: p50 %v p99 %v max %v (n=%d)",
		percentile(ack, .5), percentile(ack, .99), percentile(vis, .5), percentile(vis, .99), percentile(vis, 1), n)
}

// TestCreateRaceOneWinner: s0 and s2 create the same keys at the same
// instant with different replicas: exactly one wins each key, the other
// adopts it, and both stores end up routing to the winner.
func TestCreateRaceOneWinner(t *testing.T) {
	a, c := shared.members[0].Store, shared.members[2].Store
	const n = 50
	wins := map[string]int{}
	for i := range n {
		id := key(t, i)
		res := make(chan Result, 2)
		var start sync.WaitGroup
		start.Add(1)
		var wg sync.WaitGroup
		for _, s := range []struct {
			st  *KVStore
			rep string
		}{{a, "rA"}, {c, "rC"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				s.st.Create(Session, id, Binding{Replica: s.rep, Sentinel: s.rep}, func(r Result) { res <- r })
			}()
		}
		start.Done()
		wg.Wait()
		r1, r2 := <-res, <-res
		if r1.Err != nil || r2.Err != nil {
			t.Fatalf("%s: errors %v %v", id, r1.Err, r2.Err)
		}
		if r1.Won == r2.Won {
			t.Fatalf("%s: want exactly one winner, got won=%v,%v", id, r1.Won, r2.Won)
		}
		if r1.Binding.Replica != r2.Binding.Replica || r1.Binding.Revision != r2.Binding.Revision {
			t.Fatalf("%s: the loser adopted %+v, the winner wrote %+v", id, r2.Binding, r1.Binding)
		}
		winner := r1.Binding.Replica
		wins[winner]++
		for _, s := range []*KVStore{a, c} {
			if b, ok := s.Lookup(Session, id); !ok || b.Replica != winner {
				t.Fatalf("%s: after the race a store routes to %+v (ok=%v), want %s", id, b, ok, winner)
			}
		}
	}
	t.Logf("winners over %d races: %v", n, wins)
}

// TestUpdateRaceOneWinner: two sentinels re-pin the same binding from the
// same revision: one Update wins, the other adopts it.
func TestUpdateRaceOneWinner(t *testing.T) {
	a, c := shared.members[0].Store, shared.members[2].Store
	id := key(t)
	done := make(chan Result, 2)
	a.Create(Session, id, Binding{Replica: "r1", Sentinel: "s0"}, func(r Result) { done <- r })
	first := <-done
	if !first.Won {
		t.Fatalf("create: %+v", first)
	}
	eventually(t, 5*time.Second, "s2 sees the binding", func() bool {
		b, ok := c.Lookup(Session, id)
		return ok && b.Revision == first.Binding.Revision
	})
	rev := first.Binding.Revision
	go a.Update(Session, id, Binding{Replica: "r2", Sentinel: "s0", Epoch: 1}, rev, func(r Result) { done <- r })
	go c.Update(Session, id, Binding{Replica: "r3", Sentinel: "s2", Epoch: 1}, rev, func(r Result) { done <- r })
	r1, r2 := <-done, <-done
	if r1.Err != nil || r2.Err != nil || r1.Won == r2.Won || r1.Binding.Replica != r2.Binding.Replica {
		t.Fatalf("update race: %+v / %+v", r1, r2)
	}
	w := r1.Binding
	for _, s := range []*KVStore{a, c} {
		eventually(t, 5*time.Second, "both route to the re-pin winner", func() bool {
			b, ok := s.Lookup(Session, id)
			return ok && b.Replica == w.Replica && b.Epoch == 1
		})
	}
	// A stale revision loses to what the cluster holds.
	a.Update(Session, id, Binding{Replica: "r9", Sentinel: "s0", Epoch: 2}, rev, func(r Result) { done <- r })
	if r := <-done; r.Won || r.Err != nil || r.Binding.Replica != w.Replica {
		t.Fatalf("stale update: %+v", r)
	}
	if b, _ := a.Lookup(Session, id); b.Replica != w.Replica {
		t.Fatalf("stale update left %+v locally", b)
	}
}

// TestDeletePropagates: an unbind on one sentinel removes the binding from
// the others' LRUs; channel and session keys are separate.
func TestDeletePropagates(t *testing.T) {
	a, c := shared.members[0].Store, shared.members[2].Store
	id := key(t)
	done := make(chan Result, 2)
	a.Create(Channel, id, Binding{Replica: "r1", Sentinel: "s0", Client: "sid-1"}, func(r Result) { done <- r })
	a.Create(Session, id, Binding{Replica: "r2", Sentinel: "s0"}, func(r Result) { done <- r })
	<-done
	<-done
	eventually(t, 5*time.Second, "s2 sees both", func() bool {
		ch, ok1 := c.Lookup(Channel, id)
		se, ok2 := c.Lookup(Session, id)
		return ok1 && ok2 && ch.Replica == "r1" && ch.Client == "sid-1" && se.Replica == "r2"
	})
	a.Delete(Channel, id)
	if _, ok := a.Lookup(Channel, id); ok {
		t.Fatal("deleted channel still bound locally")
	}
	eventually(t, 5*time.Second, "s2 drops the channel", func() bool {
		_, ok := c.Lookup(Channel, id)
		return !ok
	})
	if b, ok := c.Lookup(Session, id); !ok || b.Replica != "r2" {
		t.Fatalf("the session binding went with the channel: %+v %v", b, ok)
	}
}

// TestLookupDoesNotAllocate: the hot path.
func TestLookupDoesNotAllocate(t *testing.T) {
	a := shared.members[1].Store
	done := make(chan Result, 1)
	id := key(t)
	a.Create(Session, id, Binding{Replica: "r1", Sentinel: "s1"}, func(r Result) { done <- r })
	<-done
	if n := testing.AllocsPerRun(1000, func() {
		if _, ok := a.Lookup(Session, id); !ok {
			t.Fatal("miss")
		}
		a.Lookup(Channel, "absent")
	}); n != 0 {
		t.Fatalf("Lookup allocates %v times", n)
	}
}

// TestBadInput: refused without panics, reported through done.
func TestBadInput(t *testing.T) {
	a := shared.members[0].Store
	for _, tc := range []struct {
		k  Kind
		id string
		b  Binding
	}{{Session, "", Binding{Replica: "r"}}, {Kind(9), "x", Binding{Replica: "r"}}, {Session, "x", Binding{}}} {
		var got Result
		b, ok := a.Create(tc.k, tc.id, tc.b, func(r Result) { got = r })
		if ok || b != (Binding{}) || got.Err == nil {
			t.Errorf("Create(%v,%q,%+v) = %+v %v, done %+v", tc.k, tc.id, tc.b, b, ok, got)
		}
	}
	if _, err := decodeBinding([]byte(`{"r":""}`)); err == nil {
		t.Error("binding without replica decoded")
	}
	if _, _, err := parseKVKey("x.abc"); err == nil {
		t.Error("foreign key parsed")
	}
	k, id, err := parseKVKey(kvKey(Channel, "a b/c*>.é"))
	if err != nil || k != Channel || id != "a b/c*>.é" {
		t.Errorf("key round trip: %v %q %v", k, id, err)
	}
}

func BenchmarkKVStoreLookup(b *testing.B) {
	a := shared.members[1].Store
	done := make(chan Result, 1)
	a.Create(Session, b.Name(), Binding{Replica: "r1", Sentinel: "s1"}, func(r Result) { done <- r })
	<-done
	b.ReportAllocs()
	for b.Loop() {
		a.Lookup(Session, b.Name())
	}
}
