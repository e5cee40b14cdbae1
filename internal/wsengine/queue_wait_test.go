package wsengine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

// waiter runs wait on its own goroutine and reports its result on the returned channel.
func waiter(wait func() error) <-chan error {
	c := make(chan error, 1)
	go func() { c <- wait() }()
	return c
}

// blocked says whether c has no result yet once every goroutine of the bubble is durably
// blocked.
func blocked(c <-chan error) bool {
	synctest.Wait()
	select {
	case <-c:
		return false
	default:
		return true
	}
}

func TestWaitWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue(&testPool, nil, Limits{Count: 8, Bytes: 1 << 10, GlobalBytes: 1 << 20})
		if err := q.WaitWritten(t.Context(), q.Mark()); err != nil {
			t.Fatalf("nothing pushed: %v", err)
		}
		q.Push(buf(10), nil)
		q.Push(buf(10), nil)
		mark := q.Mark()
		q.Push(buf(10), nil) // after the mark: not waited for
		done := waiter(func() error { return q.WaitWritten(t.Context(), mark) })
		first := q.Take(nil, 1, 1<<20)
		q.Release(first)
		if !blocked(done) {
			t.Fatal("WaitWritten returned with one of the two marked envelopes unwritten")
		}
		second := q.Take(nil, 1, 1<<20)
		q.Release(second)
		if err := <-done; err != nil {
			t.Fatalf("WaitWritten after both written: %v", err)
		}
		// A close drops what is queued: the wait ends with ErrClosed, not at its deadline.
		mark = q.Mark()
		done = waiter(func() error { return q.WaitWritten(t.Context(), mark) })
		if !blocked(done) {
			t.Fatal("WaitWritten returned with the third envelope queued")
		}
		q.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitWritten on close: %v, want ErrClosed", err)
		}
	})
}

func TestWaitRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue(&testPool, nil, Limits{Count: 2, Bytes: 100, GlobalBytes: 1 << 20})
		q.Push(buf(40), nil)
		q.Push(buf(40), nil)
		if why := q.Push(buf(1), nil); why != RefusedFull {
			t.Fatalf("third push: %q, want %q", why, RefusedFull)
		}
		// A wait ends with its context.
		ctx, cancel := context.WithCancel(t.Context())
		done := waiter(func() error { return q.WaitRoom(ctx, 10) })
		if !blocked(done) {
			t.Fatal("WaitRoom returned on a full queue")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitRoom after cancel: %v", err)
		}
		// Room by count, then by bytes: one envelope of 40 written leaves room for 60 bytes.
		done = waiter(func() error { return q.WaitRoom(t.Context(), 60) })
		big := waiter(func() error { return q.WaitRoom(t.Context(), 61) })
		q.Release(q.Take(nil, 1, 1<<20))
		if err := <-done; err != nil {
			t.Fatalf("WaitRoom(60) with 60 bytes free: %v", err)
		}
		if !blocked(big) {
			t.Fatal("WaitRoom(61) returned with 60 bytes free")
		}
		q.Close()
		if err := <-big; !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitRoom on close: %v, want ErrClosed", err)
		}
	})
}

func TestPushOver(t *testing.T) {
	q := NewQueue(&testPool, nil, Limits{Count: 2, Bytes: 100, GlobalBytes: 100})
	q.Push(buf(50), nil)
	q.Push(buf(50), nil)
	if why := q.Push(buf(1), nil); why != RefusedFull {
		t.Fatalf("push past the bounds: %q, want %q", why, RefusedFull)
	}
	// Past the count and the byte bound: taken, counted, in order after the others.
	for i := 0; i < 3; i++ {
		if why := q.PushOver(buf(7)); why != Accepted {
			t.Fatalf("PushOver %d: %q", i, why)
		}
	}
	if q.Len() != 5 || q.Bytes() != 121 {
		t.Fatalf("after PushOver: %d envelopes, %d bytes; want 5, 121", q.Len(), q.Bytes())
	}
	got := q.Take(nil, 16, 1<<20)
	for i, it := range got {
		if want := []int{50, 50, 7, 7, 7}[i]; len(*it.B) != want {
			t.Fatalf("item %d has %d bytes, want %d", i, len(*it.B), want)
		}
	}
	q.Release(got)
	if q.Bytes() != 0 {
		t.Fatalf("bytes after release: %d", q.Bytes())
	}
	q.Close()
	if why := q.PushOver(buf(1)); why != RefusedClosed {
		t.Fatalf("PushOver on a closed queue: %q", why)
	}
}
