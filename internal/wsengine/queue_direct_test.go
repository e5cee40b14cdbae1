package wsengine

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestSendQueueClaimDirect: a sender may write directly only while the queue's writing is
// idle; in every other state it must queue (so nothing overtakes what is queued, and no two
// goroutines write the socket at once).
func TestSendQueueClaimDirect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(q *Queue[*sender])
		want  bool
	}{
		{"idle, no writer", func(q *Queue[*sender]) {}, true},
		{"writer parked (lingering)", func(q *Queue[*sender]) { q.writer = writerParked }, true},
		{"writing not enabled yet (before attach)", func(q *Queue[*sender]) { q.spawn = nil }, false},
		{"envelopes queued", func(q *Queue[*sender]) { b := []byte("x"); q.spawn = nil; q.Push(&b, nil); q.spawn = func() {} }, false},
		{"writer running a batch", func(q *Queue[*sender]) { q.writer = writerRunning }, false},
		{"another direct write", func(q *Queue[*sender]) { q.direct = true }, false},
		{"a direct write's rest to flush", func(q *Queue[*sender]) { q.needFlush = true }, false},
		{"closed", func(q *Queue[*sender]) { q.Close() }, false},
		{"a direct write just now (a burst)", func(q *Queue[*sender]) { q.lastDirect = Now() }, false},
		{"a direct write a while ago", func(q *Queue[*sender]) { q.lastDirect = Now() - int64(2*BurstGap) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var global atomic.Int64
			q := NewQueue(&testPool, &global, Limits{Count: 8, Bytes: 1 << 10, GlobalBytes: 1 << 20})
			q.spawn = func() {}
			tc.setup(q)
			if got := q.ClaimDirect(); got != tc.want {
				t.Fatalf("claimDirect = %v, want %v", got, tc.want)
			}
			if tc.want && q.ClaimDirect() {
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
		q := NewQueue(&testPool, &global, Limits{Count: 8, Bytes: 1 << 10, GlobalBytes: 1 << 20})
		done := make(chan struct{})
		defer close(done)
		var mu sync.Mutex
		var batches [][]string
		var writers atomic.Int32
		q.SetWriter(func() {
			writers.Add(1)
			go func() {
				defer writers.Add(-1)
				q.Run(done, func(batch []Item[*sender]) bool {
					mu.Lock()
					defer mu.Unlock()
					var got []string
					for _, it := range batch {
						got = append(got, string(*it.B))
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
			if why := q.Push(&b, nil); why != Accepted {
				t.Fatalf("push %q: %s", s, why)
			}
		}

		push("first") // starts a writer, which writes it and lingers
		if got := written(); len(got) != 1 || len(got[0]) != 1 || got[0][0] != "first" {
			t.Fatalf("written %v, want [[first]]", got)
		}
		if !q.ClaimDirect() {
			t.Fatal("claimDirect refused with the writer lingering")
		}
		push("a")
		push("b")
		time.Sleep(2 * writerLinger) // the linger runs out during the direct write
		if got := written(); len(got) != 0 {
			t.Fatalf("the writer wrote %v during a direct write", got)
		}
		q.EndDirect(false)
		if got := written(); len(got) != 1 || len(got[0]) != 2 || got[0][0] != "a" || got[0][1] != "b" {
			t.Fatalf("after endDirect: written %v, want [[a b]]", got)
		}

		time.Sleep(BurstGap)
		if !q.ClaimDirect() {
			t.Fatal("claimDirect refused on an idle queue")
		}
		q.EndDirect(true) // the socket took part of it: the writer must flush the rest
		if got := written(); len(got) != 1 || len(got[0]) != 0 {
			t.Fatalf("after a partial direct write: batches %v, want one empty batch (the flush)", got)
		}
		if q.ClaimDirect() {
			t.Fatal("claimDirect within BurstGap of the last direct write: a burst must go to the writer")
		}
		time.Sleep(BurstGap)
		if !q.ClaimDirect() {
			t.Fatal("claimDirect refused after the rest was flushed")
		}
		q.EndDirect(false)

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
