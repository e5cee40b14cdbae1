package sentinel

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fame-go/fame/internal/wsengine"
)

// TestSendQueueClaimDirect: a sender may write directly only while the queue's writing is
// idle; in every other state it must queue (so nothing overtakes what is queued, and no two
// goroutines write the socket at once).
func TestSendQueueClaimDirect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(q *sendQueue)
		want  bool
	}{
		{"idle, no writer", func(q *sendQueue) {}, true},
		{"writer parked (lingering)", func(q *sendQueue) { q.writer = writerParked }, true},
		{"writing not enabled yet (before attach)", func(q *sendQueue) { q.spawn = nil }, false},
		{"envelopes queued", func(q *sendQueue) { b := []byte("x"); q.spawn = nil; q.push(&b, nil); q.spawn = func() {} }, false},
		{"writer running a batch", func(q *sendQueue) { q.writer = writerRunning }, false},
		{"another direct write", func(q *sendQueue) { q.direct = true }, false},
		{"a direct write's rest to flush", func(q *sendQueue) { q.needFlush = true }, false},
		{"closed", func(q *sendQueue) { q.close() }, false},
		{"a direct write just now (a burst)", func(q *sendQueue) { q.lastDirect = wsengine.Now() }, false},
		{"a direct write a while ago", func(q *sendQueue) { q.lastDirect = wsengine.Now() - int64(2*wsengine.BurstGap) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var global atomic.Int64
			q := newSendQueue(&global, queueLimits{count: 8, bytes: 1 << 10, globalBytes: 1 << 20})
			q.spawn = func() {}
			tc.setup(q)
			if got := q.claimDirect(); got != tc.want {
				t.Fatalf("claimDirect = %v, want %v", got, tc.want)
			}
			if tc.want && q.claimDirect() {
				t.Fatal("a second claim while the first is in progress")
			}
		})
	}
}

// TestSendQueueDirectHandOver: while a sender writes directly, a lingering writer writes
// nothing, even when its linger runs out, and pushes only queue; endDirect hands the queued
// envelopes (in order) and a direct write's unflushed rest (an empty batch: flush) to the
// writer, which retires once idle again.
func TestSendQueueDirectHandOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var global atomic.Int64
		q := newSendQueue(&global, queueLimits{count: 8, bytes: 1 << 10, globalBytes: 1 << 20})
		done := make(chan struct{})
		defer close(done)
		var mu sync.Mutex
		var batches [][]string
		var writers atomic.Int32
		q.setWriter(func() {
			writers.Add(1)
			go func() {
				defer writers.Add(-1)
				q.run(done, func(batch []queued) bool {
					mu.Lock()
					defer mu.Unlock()
					var got []string
					for _, it := range batch {
						got = append(got, string(*it.b))
					}
					batches = append(batches, got)
					return true
				})
			}()
		})
		written := func() [][]string {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			out := batches
			batches = nil
			return out
		}
		push := func(s string) {
			b := []byte(s)
			if why := q.push(&b, nil); why != queueOK {
				t.Fatalf("push %q: %s", s, why)
			}
		}

		push("first") // starts a writer, which writes it and lingers
		if got := written(); len(got) != 1 || len(got[0]) != 1 || got[0][0] != "first" {
			t.Fatalf("written %v, want [[first]]", got)
		}
		if !q.claimDirect() {
			t.Fatal("claimDirect refused with the writer lingering")
		}
		push("a")
		push("b")
		time.Sleep(2 * writerLinger) // the linger runs out during the direct write
		if got := written(); len(got) != 0 {
			t.Fatalf("the writer wrote %v during a direct write", got)
		}
		q.endDirect(false)
		if got := written(); len(got) != 1 || len(got[0]) != 2 || got[0][0] != "a" || got[0][1] != "b" {
			t.Fatalf("after endDirect: written %v, want [[a b]]", got)
		}

		time.Sleep(wsengine.BurstGap)
		if !q.claimDirect() {
			t.Fatal("claimDirect refused on an idle queue")
		}
		q.endDirect(true) // the socket took part of it: the writer must flush the rest
		if got := written(); len(got) != 1 || len(got[0]) != 0 {
			t.Fatalf("after a partial direct write: batches %v, want one empty batch (the flush)", got)
		}
		if q.claimDirect() {
			t.Fatal("claimDirect within wsengine.BurstGap of the last direct write: a burst must go to the writer")
		}
		time.Sleep(wsengine.BurstGap)
		if !q.claimDirect() {
			t.Fatal("claimDirect refused after the rest was flushed")
		}
		q.endDirect(false)

		time.Sleep(2 * writerLinger)
		synctest.Wait()
		q.mu.Lock()
		state, ring := q.writer, q.ring
		q.mu.Unlock()
		if writers.Load() != 0 || state != writerNone || ring != nil {
			t.Fatalf("idle queue: %d writers (state %d), ring of %d", writers.Load(), state, len(ring))
		}
	})
}
