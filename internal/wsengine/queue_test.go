package wsengine

import (
	"sync/atomic"
	"testing"
)

func buf(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

func TestSendQueueBoundsAndFairness(t *testing.T) {
	var global atomic.Int64
	q := NewQueue(&testPool, &global, Limits{Count: 16, Bytes: 1000, GlobalBytes: 1 << 20})
	flooder, other := &sender{}, &sender{}
	if q.ring != nil {
		t.Fatal("a new queue must not allocate its ring before the first push")
	}
	// One sender may fill half the queue, in bytes...
	for i := 0; i < 5; i++ {
		if why := q.Push(buf(100), flooder); why != Accepted {
			t.Fatalf("push %d: %q", i, why)
		}
	}
	if why := q.Push(buf(100), flooder); why != RefusedShare {
		t.Fatalf("flooder past half the bytes: %q, want %q", why, RefusedShare)
	}
	// ...and the other half stays for everyone else.
	for i := 0; i < 4; i++ {
		if why := q.Push(buf(100), other); why != Accepted {
			t.Fatalf("innocent sender push %d: %q", i, why)
		}
	}
	if why := q.Push(buf(200), nil); why != RefusedFull {
		t.Fatalf("past the byte bound: %q, want %q", why, RefusedFull)
	}
	if got := global.Load(); got != 900 {
		t.Fatalf("global bytes %d, want 900", got)
	}
	batch := q.Take(nil, 3, 1<<20)
	if len(batch) != 3 || q.Len() != 6 {
		t.Fatalf("took %d, left %d", len(batch), q.Len())
	}
	if q.Bytes() != 900 {
		t.Fatalf("bytes being written must stay counted until released: %d", q.Bytes())
	}
	q.Release(batch)
	if q.Bytes() != 600 || global.Load() != 600 || q.useOf(flooder).n != 2 {
		t.Fatalf("after release: %d bytes, global %d, flooder holds %+v", q.Bytes(), global.Load(), q.useOf(flooder))
	}
	q.Close()
	if global.Load() != 0 || q.Push(buf(1), nil) != RefusedClosed {
		t.Fatalf("closed queue: global %d", global.Load())
	}
}

func TestSendQueueCountAndGlobal(t *testing.T) {
	var global atomic.Int64
	a := NewQueue(&testPool, &global, Limits{Count: 16, Bytes: 1 << 20, GlobalBytes: 1000})
	b := NewQueue(&testPool, &global, Limits{Count: 16, Bytes: 1 << 20, GlobalBytes: 1000})
	for i := 0; i < 16; i++ {
		if why := a.Push(buf(1), nil); why != Accepted {
			t.Fatalf("push %d: %q", i, why)
		}
	}
	if why := a.Push(buf(1), nil); why != RefusedFull {
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
		if why := a.Push(&x, nil); why != Accepted {
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
