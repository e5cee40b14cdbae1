package connengine

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/internal/bufpool"
)

// The queue's bounds and its on-demand writer (moved here with the queue from package
// sentinel, assertions unchanged).

func buf(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

func TestSendQueueBoundsAndFairness(t *testing.T) {
	var global atomic.Int64
	q := NewQueue(&global, Limits{Count: 16, Bytes: 1000, GlobalBytes: 1 << 20})
	flooder, other := new(int), new(int)
	if q.ring != nil {
		t.Fatal("a new queue must not allocate its ring before the first push")
	}
	// One sender may fill half the queue, in bytes...
	for i := 0; i < 5; i++ {
		if why := q.Push(buf(100), flooder); why != OK {
			t.Fatalf("push %d: %q", i, why)
		}
	}
	if why := q.Push(buf(100), flooder); why != RefusedShare {
		t.Fatalf("flooder past half the bytes: %q, want %q", why, RefusedShare)
	}
	// ...and the other half stays for everyone else.
	for i := 0; i < 4; i++ {
		if why := q.Push(buf(100), other); why != OK {
			t.Fatalf("innocent sender push %d: %q", i, why)
		}
	}
	if why := q.Push(buf(200), nil); why != RefusedQueue {
		t.Fatalf("past the byte bound: %q, want %q", why, RefusedQueue)
	}
	if got := global.Load(); got != 900 {
		t.Fatalf("global bytes %d, want 900", got)
	}
	batch := q.Take(nil, 3, 1<<20)
	if len(batch) != 3 || q.Len() != 6 {
		t.Fatalf("took %d, left %d", len(batch), q.Len())
	}
	if q.QueuedBytes() != 900 {
		t.Fatalf("bytes being written must stay counted until released: %d", q.QueuedBytes())
	}
	q.Release(batch)
	if q.QueuedBytes() != 600 || global.Load() != 600 || q.useOf(flooder).n != 2 {
		t.Fatalf("after release: %d bytes, global %d, flooder holds %+v", q.QueuedBytes(), global.Load(), q.useOf(flooder))
	}
	q.Close()
	if global.Load() != 0 || q.Push(buf(1), nil) != Closed {
		t.Fatalf("closed queue: global %d", global.Load())
	}
}

func TestSendQueueCountAndGlobal(t *testing.T) {
	var global atomic.Int64
	a := NewQueue(&global, Limits{Count: 16, Bytes: 1 << 20, GlobalBytes: 1000})
	b := NewQueue(&global, Limits{Count: 16, Bytes: 1 << 20, GlobalBytes: 1000})
	for i := 0; i < 16; i++ {
		if why := a.Push(buf(1), nil); why != OK {
			t.Fatalf("push %d: %q", i, why)
		}
	}
	if why := a.Push(buf(1), nil); why != RefusedQueue {
		t.Fatalf("past the count bound: %q", why)
	}
	if why := b.Push(buf(990), nil); why != RefusedGlobal {
		t.Fatalf("past the global bound: %q, want %q", why, RefusedGlobal)
	}
	// Order is kept across ring growth and wrap-around.
	batch := a.Take(nil, 10, 1<<20)
	a.Release(batch)
	for i := 0; i < 10; i++ {
		x := make([]byte, 1, 1+i)
		x[0] = byte(i)
		if why := a.Push(&x, nil); why != OK {
			t.Fatalf("refill %d: %q", i, why)
		}
	}
	all := a.Take(nil, 100, 1<<20)
	if len(all) != 16 {
		t.Fatalf("took %d, want 16", len(all))
	}
	for i, it := range all[6:] {
		if (*it.B)[0] != byte(i) {
			t.Fatalf("item %d out of order: %d", i, (*it.B)[0])
		}
	}
	a.Release(all)
	if len(a.ring) != 16 {
		t.Fatalf("ring of %d slots for a bound of 16", len(a.ring))
	}
}

// TestSendQueueWriterOnDemand: many senders push to one queue whose writers come and go
// (started on demand, lingering, retiring); every envelope is written exactly once, in each
// sender's order, by one writer at a time, and an idle queue ends with no writer and no ring.
func TestSendQueueWriterOnDemand(t *testing.T) {
	var global atomic.Int64
	q := NewQueue(&global, Limits{Count: 64, Bytes: 1 << 20, GlobalBytes: 1 << 30})
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
			q.Run(done, func(batch []Item) bool {
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
			src := new(int)
			for i := 0; i < per; i++ {
				b := make([]byte, 8)
				binary.BigEndian.PutUint32(b, uint32(s))
				binary.BigEndian.PutUint32(b[4:], uint32(i))
				for q.Push(&b, src) != OK {
					time.Sleep(10 * time.Microsecond) // full: retry, as a throttled sender would
				}
				if i%500 == 0 {
					time.Sleep(WriterLinger + 50*time.Millisecond) // let the writer retire
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
			q := NewQueue(&global, Limits{Count: 4096, Bytes: 8 << 20, GlobalBytes: 1 << 30})
			srcs := make([]*int, senders)
			for i := range srcs {
				srcs[i] = new(int)
			}
			batch := make([]Item, 0, MaxBatch)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for k := 0; k < 16; k++ {
					bp := bufpool.Get()
					*bp = (*bp)[:500]
					if q.Push(bp, srcs[(i+k)%senders]) != OK {
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
	q := NewQueue(&global, Limits{Count: 1000, Bytes: 2000, GlobalBytes: 1 << 20})
	srcs := []*int{new(int), new(int), new(int), new(int)}
	// Each sender may hold half the bytes (1000).
	for round := 0; round < 2; round++ {
		for _, src := range srcs[:2] {
			for i := 0; i < 2; i++ {
				if why := q.Push(buf(100), src); why != OK {
					t.Fatalf("round %d: %q", round, why)
				}
			}
		}
	}
	// srcs[0] and srcs[1] hold 400 each (in few); srcs[2] goes to the map.
	if why := q.Push(buf(100), srcs[2]); why != OK {
		t.Fatalf("third sender: %q", why)
	}
	if why := q.Push(buf(700), srcs[0]); why != RefusedShare {
		t.Fatalf("sender past its share: %q, want %q", why, RefusedShare)
	}
	if why := q.Push(buf(1200), srcs[3]); why != RefusedQueue {
		t.Fatalf("queue past its bound: %q, want %q", why, RefusedQueue)
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
	if q.few != [2]srcSlot{} || len(q.perSrc) != 0 || global.Load() != 0 || q.QueuedBytes() != 0 {
		t.Fatalf("after releasing everything: few %+v, map %v, global %d", q.few, q.perSrc, global.Load())
	}
}
