package sentinel

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSendQueueWriterOnDemand: many senders push to one queue whose writers come and go
// (started on demand, lingering, retiring); every envelope is written exactly once, in each
// sender's order, by one writer at a time, and an idle queue ends with no writer and no ring.
func TestSendQueueWriterOnDemand(t *testing.T) {
	var global atomic.Int64
	q := newSendQueue(&global, queueLimits{count: 64, bytes: 1 << 20, globalBytes: 1 << 30})
	done := make(chan struct{})
	var writers, active, spawned atomic.Int32
	var mu sync.Mutex
	last := map[uint32]uint32{}
	var got atomic.Int64
	var bad atomic.Pointer[string]
	fail := func(s string) { bad.CompareAndSwap(nil, &s) }
	q.setWriter(func() {
		spawned.Add(1)
		writers.Add(1)
		go func() {
			defer writers.Add(-1)
			q.run(done, func(batch []queued) bool {
				if active.Add(1) != 1 {
					fail("two writers at once")
				}
				mu.Lock()
				for _, it := range batch {
					src, seq := binary.BigEndian.Uint32((*it.b)[:4]), binary.BigEndian.Uint32((*it.b)[4:8])
					if prev, ok := last[src]; ok && seq != prev+1 {
						fail("out of order")
					}
					last[src] = seq
					got.Add(1)
				}
				mu.Unlock()
				active.Add(-1)
				return true
			})
		}()
	})
	const senders, per = 8, 3000
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			src := &conn{}
			for i := 0; i < per; i++ {
				b := make([]byte, 8)
				binary.BigEndian.PutUint32(b, uint32(s))
				binary.BigEndian.PutUint32(b[4:], uint32(i))
				for q.push(&b, src) != queueOK {
					time.Sleep(10 * time.Microsecond) // full: retry, as a throttled sender would
				}
				if i%500 == 0 {
					time.Sleep(writerLinger + 50*time.Millisecond) // let the writer retire
				}
			}
		}(s)
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < senders*per && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if p := bad.Load(); p != nil {
		t.Fatal(*p)
	}
	if n := got.Load(); n != senders*per {
		t.Fatalf("%d of %d envelopes written", n, senders*per)
	}
	for time.Now().Before(deadline) && writers.Load() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	q.mu.Lock()
	ring, state := q.ring, q.writer
	q.mu.Unlock()
	if writers.Load() != 0 || state != writerNone || ring != nil {
		t.Fatalf("idle queue: %d writers (state %d), ring of %d", writers.Load(), state, len(ring))
	}
	if global.Load() != 0 {
		t.Fatalf("global bytes %d after draining", global.Load())
	}
	if spawned.Load() < 2 {
		t.Fatalf("writers started %d times; the lingering writer never retired", spawned.Load())
	}
	close(done)
}
