package cluster

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestBindingTTL: on a bucket whose bindings live 2 s, a binding that is
// looked up keeps being rewritten in the background and survives; one that
// is not ages out of the bucket, and the marker it leaves removes it from
// every sentinel's LRU.
func TestBindingTTL(t *testing.T) {
	t.Parallel() // mostly waiting: runs beside the other slow ones
	open := func(i int) *KVStore {
		cfg := shared.members[i].Config
		cfg.Name = "ttl"
		cfg.BindingTTL = 2 * time.Second
		js, err := jetstream.New(shared.members[i].Conn)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewKVStore(js, cfg, StoreOptions{Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		select {
		case <-s.Synced():
		case <-time.After(20 * time.Second):
			t.Fatal("ttl bucket not ready")
		}
		return s
	}
	a, c := open(0), open(2)
	done := make(chan Result, 2)
	a.Create(Session, "used", Binding{Replica: "r1", Sentinel: "s0"}, func(r Result) { done <- r })
	a.Create(Session, "idle", Binding{Replica: "r1", Sentinel: "s0"}, func(r Result) { done <- r })
	first := (<-done).Binding.Revision
	<-done
	eventually(t, 5*time.Second, "both on s2", func() bool {
		_, ok1 := c.Lookup(Session, "used")
		_, ok2 := c.Lookup(Session, "idle")
		return ok1 && ok2
	})
	// Only s0 uses "used"; s2 never looks either up again.
	start := time.Now()
	for time.Since(start) < 4*time.Second {
		if b, ok := a.Lookup(Session, "used"); !ok || b.Replica != "r1" {
			t.Fatalf("the binding in use was lost: %+v %v", b, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, ok := c.Lookup(Session, "used")
	if !ok || b.Revision <= first {
		t.Fatalf("the binding in use was not rewritten (s2 holds %+v, %v; first revision %d)", b, ok, first)
	}
	eventually(t, 5*time.Second, "the idle binding aged out everywhere", func() bool {
		_, ok1 := a.Lookup(Session, "idle")
		_, ok2 := c.Lookup(Session, "idle")
		return !ok1 && !ok2
	})
}
