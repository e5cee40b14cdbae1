package sentinel

import (
	"sync/atomic"
	"testing"
)

// drainQueue makes c's queue drain as its writer goroutines would, without a socket: the
// writers run the real loop (sendQueue.run) and release what they take.
func drainQueue(c *conn) {
	c.q.setWriter(func() {
		go c.q.run(c.done, func([]queued) bool { return true })
	})
}

func buf(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

func TestSendQueueBoundsAndFairness(t *testing.T) {
	var global atomic.Int64
	q := newSendQueue(&global, queueLimits{count: 16, bytes: 1000, globalBytes: 1 << 20})
	flooder, other := &conn{}, &conn{}
	if q.ring != nil {
		t.Fatal("a new queue must not allocate its ring before the first push")
	}
	// One sender may fill half the queue, in bytes...
	for i := 0; i < 5; i++ {
		if why := q.push(buf(100), flooder); why != queueOK {
			t.Fatalf("push %d: %q", i, why)
		}
	}
	if why := q.push(buf(100), flooder); why != limitQueueFair {
		t.Fatalf("flooder past half the bytes: %q, want %q", why, limitQueueFair)
	}
	// ...and the other half stays for everyone else.
	for i := 0; i < 4; i++ {
		if why := q.push(buf(100), other); why != queueOK {
			t.Fatalf("innocent sender push %d: %q", i, why)
		}
	}
	if why := q.push(buf(200), nil); why != limitQueue {
		t.Fatalf("past the byte bound: %q, want %q", why, limitQueue)
	}
	if got := global.Load(); got != 900 {
		t.Fatalf("global bytes %d, want 900", got)
	}
	batch := q.take(nil, 3, 1<<20)
	if len(batch) != 3 || q.len() != 6 {
		t.Fatalf("took %d, left %d", len(batch), q.len())
	}
	if q.queuedBytes() != 900 {
		t.Fatalf("bytes being written must stay counted until released: %d", q.queuedBytes())
	}
	q.release(batch)
	if q.queuedBytes() != 600 || global.Load() != 600 || q.useOf(flooder).n != 2 {
		t.Fatalf("after release: %d bytes, global %d, flooder holds %+v", q.queuedBytes(), global.Load(), q.useOf(flooder))
	}
	q.close()
	if global.Load() != 0 || q.push(buf(1), nil) != queueClosed {
		t.Fatalf("closed queue: global %d", global.Load())
	}
}

func TestSendQueueCountAndGlobal(t *testing.T) {
	var global atomic.Int64
	a := newSendQueue(&global, queueLimits{count: 16, bytes: 1 << 20, globalBytes: 1000})
	b := newSendQueue(&global, queueLimits{count: 16, bytes: 1 << 20, globalBytes: 1000})
	for i := 0; i < 16; i++ {
		if why := a.push(buf(1), nil); why != queueOK {
			t.Fatalf("push %d: %q", i, why)
		}
	}
	if why := a.push(buf(1), nil); why != limitQueue {
		t.Fatalf("past the count bound: %q", why)
	}
	if why := b.push(buf(990), nil); why != limitGlobalQueue {
		t.Fatalf("past the global bound: %q, want %q", why, limitGlobalQueue)
	}
	// Order is kept across ring growth and wrap-around.
	batch := a.take(nil, 10, 1<<20)
	a.release(batch)
	for i := 0; i < 10; i++ {
		x := make([]byte, 1, 1+i)
		x[0] = byte(i)
		if why := a.push(&x, nil); why != queueOK {
			t.Fatalf("refill %d: %q", i, why)
		}
	}
	all := a.take(nil, 100, 1<<20)
	if len(all) != 16 {
		t.Fatalf("took %d, want 16", len(all))
	}
	for i, it := range all[6:] {
		if (*it.b)[0] != byte(i) {
			t.Fatalf("item %d out of order: %d", i, (*it.b)[0])
		}
	}
	a.release(all)
	if len(a.ring) != 16 {
		t.Fatalf("ring of %d slots for a bound of 16", len(a.ring))
	}
}
