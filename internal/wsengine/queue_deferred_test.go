package wsengine

import (
	"sync/atomic"
	"testing"
)

// TestSendQueuePushDeferred: a reader's push leaves the writer asleep, and owes a flush, only
// when the queue's writing is idle and nobody owes one yet; in every other state someone else
// (the running writer, the direct writer's endDirect, setWriter, the reader that owes) writes
// the envelope, and nothing is owed twice.
func TestSendQueuePushDeferred(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(q *Queue[*sender])
		wantOwe bool
	}{
		{"idle, no writer", func(q *Queue[*sender]) {}, true},
		{"writer parked (lingering)", func(q *Queue[*sender]) { q.writer = writerParked }, true},
		{"writer running", func(q *Queue[*sender]) { q.writer = writerRunning }, false},
		{"a direct write in progress", func(q *Queue[*sender]) { q.direct = true }, false},
		{"a direct write's rest to flush", func(q *Queue[*sender]) { q.needFlush = true }, false},
		{"writing not enabled yet (before attach)", func(q *Queue[*sender]) { q.spawn = nil }, false},
		{"owed already by another reader", func(q *Queue[*sender]) { q.owed = true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var global atomic.Int64
			q := NewQueue(&testPool, &global, Limits{Count: 8, Bytes: 1 << 10, GlobalBytes: 1 << 20})
			var spawned atomic.Int32
			q.spawn = func() { spawned.Add(1) }
			tc.setup(q)
			b := []byte("x")
			why, owe := q.PushDeferred(&b, &sender{})
			if why != Accepted || owe != tc.wantOwe {
				t.Fatalf("pushDeferred = %q, owe %v; want ok, owe %v", why, owe, tc.wantOwe)
			}
			if spawned.Load() != 0 {
				t.Fatal("a deferred push started a writer")
			}
			if owe {
				c := []byte("y")
				if _, again := q.PushDeferred(&c, &sender{}); again {
					t.Fatal("a second push owes the same flush again")
				}
			}
		})
	}
	var global atomic.Int64
	q := NewQueue(&testPool, &global, Limits{Count: 1, Bytes: 1 << 10, GlobalBytes: 1 << 20})
	q.spawn = func() {}
	a, b := []byte("a"), []byte("b")
	q.PushDeferred(&a, nil)
	if why, owe := q.PushDeferred(&b, nil); why != RefusedFull || owe {
		t.Fatalf("a full queue: %q, owe %v; want %q", why, owe, RefusedFull)
	}
}
