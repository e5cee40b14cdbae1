package sentinel

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/envelope"
)

// The drainer (drain.go) with fake peers: it waits for the calls in flight, nacks what is left
// at the timeout, and has the channels closed. No sockets, no Sentinel.

// drainFake is a fakePeer with requests in flight and bytes queued.
type drainFake struct {
	*fakePeer
	mu      sync.Mutex
	pending []pendingReq
	queued  int64
}

func (p *drainFake) awaiting(time.Time, func(string) bool, map[string]bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

func (p *drainFake) queuedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

func (p *drainFake) takePending() []pendingReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pending
	p.pending = nil
	return out
}

func (p *drainFake) set(pending []pendingReq, queued int64) {
	p.mu.Lock()
	p.pending, p.queued = pending, queued
	p.mu.Unlock()
}

type drainFixture struct {
	d       *drainer
	refuse  *fakeRefuser
	peers   []*drainFake
	closeMu sync.Mutex
	closes  []string // reasons closeChannels was called with
}

func newDrainFixture(t *testing.T, timeout time.Duration, n int) *drainFixture {
	t.Helper()
	f := &drainFixture{refuse: &fakeRefuser{}}
	for i := 0; i < n; i++ {
		f.peers = append(f.peers, &drainFake{fakePeer: newFakePeer("/s", "p"+string(rune('a'+i)))})
	}
	f.d = newDrainer(drainDeps{timeout: timeout, log: discardLog, reg: prometheus.NewRegistry(),
		peers: func() []peer {
			out := make([]peer, len(f.peers))
			for i, p := range f.peers {
				out[i] = p
			}
			return out
		},
		closeChannels: func(reason string) int {
			f.closeMu.Lock()
			f.closes = append(f.closes, reason)
			f.closeMu.Unlock()
			return 1
		},
		refuse: f.refuse})
	return f
}

func req(id string) pendingReq {
	return pendingReq{id: id, replyTo: "__rpc__x@/s/client", to: "math@fame.fabric", frameType: envelope.TypeData, corrID: "c-" + id}
}

// TestDrainWaitsForInFlight: the drain ends only once no request awaits its reply and every
// queue is flushed; nothing is nacked and the channels are closed once, at the end.
func TestDrainWaitsForInFlight(t *testing.T) {
	f := newDrainFixture(t, time.Minute, 2)
	f.peers[0].set([]pendingReq{req("1"), req("2")}, 0)
	f.peers[1].set(nil, 512) // a reply still queued for a client
	if !f.d.start() || f.d.start() {
		t.Fatal("start: want true once, then false")
	}
	done := make(chan bool, 1)
	go func() { done <- f.d.run(make(chan struct{})) }()
	select {
	case <-done:
		t.Fatal("drain finished with requests in flight")
	case <-time.After(5 * drainPoll):
	}
	f.peers[0].set(nil, 0)
	select {
	case <-done:
		t.Fatal("drain finished with a queue not flushed")
	case <-time.After(5 * drainPoll):
	}
	f.peers[1].set(nil, 0)
	select {
	case idle := <-done:
		if !idle {
			t.Fatal("run: idle=false, want true")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not finish once idle")
	}
	if got := f.refuse.take(); len(got) != 0 {
		t.Fatalf("nacks on an idle drain: %+v", got)
	}
	if len(f.closes) != 1 {
		t.Fatalf("closeChannels called %d times, want 1", len(f.closes))
	}
	if got := counterValue(t, f.d.finished.WithLabelValues("idle")); got != 1 {
		t.Fatalf("fame_drains_total{idle} = %v, want 1", got)
	}
}

// TestDrainTimeoutNacksLeftovers: at the drain timeout every request still open is nacked
// DRAINING to its caller (none is left to time out), and counted as abandoned.
func TestDrainTimeoutNacksLeftovers(t *testing.T) {
	f := newDrainFixture(t, 3*drainPoll, 2)
	f.peers[0].set([]pendingReq{req("1")}, 0)
	f.peers[1].set([]pendingReq{req("2"), req("3")}, 0)
	f.d.start()
	if idle := f.d.run(make(chan struct{})); idle {
		t.Fatal("run: idle=true with requests stuck, want the timeout")
	}
	got := f.refuse.take()
	if len(got) != 3 {
		t.Fatalf("%d nacks, want 3: %+v", len(got), got)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if r.kind != "pending" || r.reason != CodeDraining {
			t.Fatalf("nack %+v, want a pending DRAINING nack", r)
		}
		seen[r.req.id] = true
	}
	if !seen["1"] || !seen["2"] || !seen["3"] {
		t.Fatalf("nacked %v, want 1, 2 and 3", seen)
	}
	if got := counterValue(t, f.d.refusals.WithLabelValues("abandoned")); got != 3 {
		t.Fatalf("fame_drain_refusals_total{abandoned} = %v, want 3", got)
	}
	if got := counterValue(t, f.d.finished.WithLabelValues("timeout")); got != 1 {
		t.Fatalf("fame_drains_total{timeout} = %v, want 1", got)
	}
}

// TestDrainStopEndsEarly: Shutdown during a drain (stop) ends it without nacking anything.
func TestDrainStopEndsEarly(t *testing.T) {
	f := newDrainFixture(t, time.Minute, 1)
	f.peers[0].set([]pendingReq{req("1")}, 0)
	f.d.start()
	stop := make(chan struct{})
	close(stop)
	if f.d.run(stop) {
		t.Fatal("run: idle=true after stop")
	}
	if got := f.refuse.take(); len(got) != 0 {
		t.Fatalf("nacks after stop: %+v", got)
	}
}

// TestDrainNewCall: what counts as a new call (nacked DRAINING while draining) and what flows.
func TestDrainNewCall(t *testing.T) {
	base := func(ft string, rt envelope.RType, replyTo string) *envelope.Header {
		return &envelope.Header{ID: []byte("i"), CorrID: []byte("c"), FrameType: []byte(ft), RType: rt, ReplyTo: []byte(replyTo)}
	}
	for _, c := range []struct {
		name string
		h    *envelope.Header
		want bool
	}{
		{"request ACK|REPLY", base(envelope.TypeData, envelope.RTypeAck|envelope.RTypeReply, "__rpc__x@/s/c"), true},
		{"request STREAM", base(envelope.TypeData, envelope.RTypeStream, "__rpc__x@/s/c"), true},
		{"channel open", base(envelope.TypeSecureOpen, 0, "__sys__@/s/c"), true},
		{"at-least-once reply (rtype ACK, replyTo __sys__)", base(envelope.TypeData, envelope.RTypeAck, "__sys__@/s/r"), false},
		{"at-most-once reply", base(envelope.TypeData, 0, ""), false},
		{"fire and forget", base(envelope.TypeData, envelope.RTypeReply, ""), false},
		{"channel accept", base(envelope.TypeSecureAccept, 0, "__sys__@/s/r"), false},
		{"delivery ack", base(envelope.TypeDeliveryAck, 0, ""), false},
	} {
		if got := newCall(c.h); got != c.want {
			t.Errorf("%s: newCall = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestDrainClosesEveryChannel: at the end of a drain each client gets a signed SecureClose
// for every channel it holds, and the bindings stay (a restarted sentinel restores them).
func TestDrainClosesEveryChannel(t *testing.T) {
	f := newStickyFixture(t, nil, 2)
	for _, cid := range []string{"chan-1", "chan-2"} {
		f.pick(t, f.client.sid, func(h *envelope.Header) {
			h.FrameType, h.FrameCID = []byte(envelope.TypeSecureOpen), []byte(cid)
		})
	}
	f.client.take()
	if n := f.r.closeAllChannels("draining"); n != 2 {
		t.Fatalf("closeAllChannels = %d, want 2", n)
	}
	got := map[string]bool{}
	for _, fr := range f.client.frames(t) {
		sc, ok := fr.(*envelope.SecureClose)
		if !ok {
			t.Fatalf("client got %#v, want SecureClose", fr)
		}
		got[sc.CID] = true
	}
	if !got["chan-1"] || !got["chan-2"] || len(got) != 2 {
		t.Fatalf("SecureClose for %v, want chan-1 and chan-2", got)
	}
	if f.sign.n.Load() != 2 {
		t.Errorf("SecureClose signed %d times, want 2", f.sign.n.Load())
	}
	for _, r := range f.reps {
		if len(r.take()) != 0 {
			t.Errorf("replica %s was sent something", r.systemID)
		}
	}
	if st := f.r.stats(); st.Channels != 2 {
		t.Fatalf("channel bindings after the drain's SecureClose: %d, want 2 kept", st.Channels)
	}
}
