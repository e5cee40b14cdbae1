package wsengine

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/internal/bufpool"
)

// TestSendQueueWriterOnDemand: many senders push to one queue whose writers come and go
// (started on demand, lingering, retiring); every envelope is written exactly once, in each
// sender's order, by one writer at a time, and an idle queue ends with no writer and no ring.
func TestSendQueueWriterOnDemand(t *testing.T) {
	var global atomic.Int64
	q := NewQueue(&testPool, &global, Limits{Count: 64, Bytes: 1 << 20, GlobalBytes: 1 << 30})
	done := make(chan struct{})
	var writers, active, spawned atomic.Int32
	var mu sync.Mutex
	last := map[uint32]uint32{}
	var got atomic.Int64
	var bad atomic.Pointer[string]
	fail := func(s string) { bad.CompareAndSwap(nil, &s) }
	q.SetWriter(func() {
		spawned.Add(1)
		writers.Add(1)
		go func() {
			defer writers.Add(-1)
			q.Run(done, func(batch []Item[*sender]) bool {
				if active.Add(1) != 1 {
					fail("two writers at once")
				}
				mu.Lock()
				for _, it := range batch {
					src, seq := binary.BigEndian.Uint32((*it.B)[:4]), binary.BigEndian.Uint32((*it.B)[4:8])
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
			src := &sender{}
			for i := 0; i < per; i++ {
				b := make([]byte, 8)
				binary.BigEndian.PutUint32(b, uint32(s))
				binary.BigEndian.PutUint32(b[4:], uint32(i))
				for q.Push(&b, src) != Accepted {
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
			q := NewQueue(&testPool, &global, Limits{Count: 4096, Bytes: 8 << 20, GlobalBytes: 1 << 30})
			srcs := make([]*sender, senders)
			for i := range srcs {
				srcs[i] = &sender{}
			}
			batch := make([]Item[*sender], 0, MaxBatch)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for k := 0; k < 16; k++ {
					bp := bufpool.Get()
					*bp = (*bp)[:500]
					if q.Push(bp, srcs[(i+k)%senders]) != Accepted {
						b.Fatal("refused")
					}
				}
				batch = q.Take(batch[:0], MaxBatch, MaxBatchBytes)
				q.Release(batch)
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
	q := NewQueue(&testPool, &global, Limits{Count: 1000, Bytes: 2000, GlobalBytes: 1 << 20})
	srcs := []*sender{{1}, {2}, {3}, {4}}
	// Each sender may hold half the bytes (1000).
	for round := 0; round < 2; round++ {
		for _, src := range srcs[:2] {
			for i := 0; i < 2; i++ {
				if why := q.Push(buf(100), src); why != Accepted {
					t.Fatalf("round %d: %q", round, why)
				}
			}
		}
	}
	// srcs[0] and srcs[1] hold 400 each (in few); srcs[2] goes to the map.
	if why := q.Push(buf(100), srcs[2]); why != Accepted {
		t.Fatalf("third sender: %q", why)
	}
	if why := q.Push(buf(700), srcs[0]); why != RefusedShare {
		t.Fatalf("sender past its share: %q, want %q", why, RefusedShare)
	}
	if why := q.Push(buf(1200), srcs[3]); why != RefusedFull {
		t.Fatalf("queue past its bound: %q, want %q", why, RefusedFull)
	}
	if u := q.useOf(srcs[2]); u.n != 1 || u.bytes != 100 || len(q.perSrc) != 1 {
		t.Fatalf("third sender holds %+v, map %v", u, q.perSrc)
	}
	// Release the first batch: srcs[0]'s envelopes first, its slot frees, srcs[2] stays mapped.
	batch := q.Take(nil, 4, 1<<20)
	q.Release(batch)
	for i, want := range []srcUse{{bytes: 200, n: 2}, {bytes: 200, n: 2}, {bytes: 100, n: 1}, {}} {
		if got := q.useOf(srcs[i]); got != want {
			t.Fatalf("sender %d holds %+v, want %+v", i, got, want)
		}
	}
	batch = q.Take(nil, 100, 1<<20)
	q.Release(batch)
	if q.few != [2]srcSlot[*sender]{} || len(q.perSrc) != 0 || global.Load() != 0 || q.Bytes() != 0 {
		t.Fatalf("after releasing everything: few %+v, map %v, global %d", q.few, q.perSrc, global.Load())
	}
}
