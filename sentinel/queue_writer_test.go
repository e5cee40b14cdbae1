package sentinel

import (
	"encoding/binary"
	"fmt"
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

// BenchmarkQueuePushTake: the queue's own cost per envelope (push, take, release), from one
// sender and from four taking turns, without a writer goroutine.
func BenchmarkQueuePushTake(b *testing.B) {
	for _, senders := range []int{1, 4} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			var global atomic.Int64
			q := newSendQueue(&global, queueLimits{count: 4096, bytes: 8 << 20, globalBytes: 1 << 30})
			srcs := make([]*conn, senders)
			for i := range srcs {
				srcs[i] = &conn{}
			}
			batch := make([]queued, 0, maxBatch)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for k := 0; k < 16; k++ {
					bp := getBuf()
					*bp = (*bp)[:500]
					if q.push(bp, srcs[(i+k)%senders]) != queueOK {
						b.Fatal("refused")
					}
				}
				batch = q.take(batch[:0], maxBatch, maxBatchBytes)
				q.release(batch)
				i++
			}
		})
	}
}

// TestSendQueueShareManySenders: the per-sender share holds past the two senders kept without
// a map, a sender moves between neither place while it holds something, and everything is
// forgotten once released.
func TestSendQueueShareManySenders(t *testing.T) {
	var global atomic.Int64
	q := newSendQueue(&global, queueLimits{count: 1000, bytes: 2000, globalBytes: 1 << 20})
	srcs := []*conn{{}, {}, {}, {}}
	// Each sender may hold half the bytes (1000).
	for round := 0; round < 2; round++ {
		for _, src := range srcs[:2] {
			for i := 0; i < 2; i++ {
				if why := q.push(buf(100), src); why != queueOK {
					t.Fatalf("round %d: %q", round, why)
				}
			}
		}
	}
	// srcs[0] and srcs[1] hold 400 each (in few); srcs[2] goes to the map.
	if why := q.push(buf(100), srcs[2]); why != queueOK {
		t.Fatalf("third sender: %q", why)
	}
	if why := q.push(buf(700), srcs[0]); why != limitQueueFair {
		t.Fatalf("sender past its share: %q, want %q", why, limitQueueFair)
	}
	if why := q.push(buf(1200), srcs[3]); why != limitQueue {
		t.Fatalf("queue past its bound: %q, want %q", why, limitQueue)
	}
	if u := q.useOf(srcs[2]); u.n != 1 || u.bytes != 100 || len(q.perSrc) != 1 {
		t.Fatalf("third sender holds %+v, map %v", u, q.perSrc)
	}
	// Release the first batch: srcs[0]'s envelopes first, its slot frees, srcs[2] stays mapped.
	batch := q.take(nil, 4, 1<<20)
	q.release(batch)
	for i, want := range []srcUse{{bytes: 200, n: 2}, {bytes: 200, n: 2}, {bytes: 100, n: 1}, {}} {
		if got := q.useOf(srcs[i]); got != want {
			t.Fatalf("sender %d holds %+v, want %+v", i, got, want)
		}
	}
	batch = q.take(nil, 100, 1<<20)
	q.release(batch)
	if q.few != [2]srcSlot{} || len(q.perSrc) != 0 || global.Load() != 0 || q.queuedBytes() != 0 {
		t.Fatalf("after releasing everything: few %+v, map %v, global %d", q.few, q.perSrc, global.Load())
	}
}
