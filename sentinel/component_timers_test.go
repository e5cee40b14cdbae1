package sentinel

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/fame-go/fame/envelope"
)

// Timer-driven behaviour, in a synctest bubble: time is fake, so the waits are exact and the
// tests take no real time. (The sentinel tests that still sleep poll a sentinel served on real
// loopback sockets, which a bubble cannot hold: a goroutine blocked on the network is not
// durably blocked, so synctest.Wait could not tell when the sentinel is done.)

// TestThrottleBackoff: a sender whose envelopes are refused waits 1 ms, then twice as long
// after each further refusal, up to maxPause; a response is never held back; the wait ends
// early when the sender's connection closes.
func TestThrottleBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &conn{done: make(chan struct{})}
		req := &envelope.Header{FrameType: []byte(envelope.TypeData), RType: envelope.RTypeReply}
		want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 64, 64}
		for i, w := range want {
			start := time.Now()
			c.throttle(req)
			if got := time.Since(start); got != w*time.Millisecond {
				t.Fatalf("refusal %d: waited %v, want %v", i+1, got, w*time.Millisecond)
			}
		}
		reply := &envelope.Header{FrameType: []byte(envelope.TypeData), CorrID: []byte("c1")}
		start := time.Now()
		c.throttle(reply)
		if got := time.Since(start); got != 0 {
			t.Fatalf("a response was held back %v", got)
		}
		go func() {
			time.Sleep(10 * time.Millisecond)
			close(c.done)
		}()
		start = time.Now()
		c.throttle(req)
		if got := time.Since(start); got != 10*time.Millisecond {
			t.Fatalf("throttle outlived the connection: waited %v, want 10ms", got)
		}
	})
}

// TestStickySweeperDropsIdleBindings: the router's sweeper drops session bindings idle past
// their TTL once a minute, without any lookup touching them.
func TestStickySweeperDropsIdleBindings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newStickyFixture(t, nil, 3)
		defer f.r.close() // the sweeper goroutine must end inside the bubble
		for _, sid := range []string{"s1", "s2", "s3"} {
			f.pick(t, envelope.SecureDigest(sid), nil)
		}
		if got := f.r.stats().Size; got != 3 {
			t.Fatalf("bindings = %d, want 3", got)
		}
		time.Sleep(time.Hour - time.Minute) // default TTL 1 h: nothing is due yet
		synctest.Wait()
		if got := f.r.stats().Size; got != 3 {
			t.Fatalf("bindings after 59 min = %d, want 3", got)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		st := f.r.stats()
		if st.Size != 0 || st.Expired != 3 {
			t.Fatalf("after 61 min: %d bindings, %d expired; want 0, 3", st.Size, st.Expired)
		}
	})
}
