package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// Against a sentinel that acks heartbeats without a drain status (the reference), Drain sends
// the drain heartbeat (payload and its own systemId), sees no status and returns
// ErrDrainUnsupported once its handlers are idle.
func TestDrainUnsupportedSentinel(t *testing.T) {
	f := newFakeSentinel(t)
	n := connect(t, testConfig(f))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Drain(ctx); !errors.Is(err, ErrDrainUnsupported) {
		t.Fatalf("Drain = %v, want ErrDrainUnsupported", err)
	}
	var hb *envelope.NodeHeartbeat
	for _, e := range f.received(n.SystemID()) {
		if fr, err := e.DecodeFrame(); err == nil {
			if h, ok := fr.(*envelope.NodeHeartbeat); ok && len(h.Payload) > 0 {
				hb = h
			}
		}
	}
	if hb == nil {
		t.Fatal("no drain heartbeat reached the sentinel")
	}
	var p envelope.DrainPayload
	if err := json.Unmarshal(hb.Payload, &p); err != nil || p.Drain == nil || !p.Drain.Request || hb.SystemID != n.SystemID() {
		t.Fatalf("drain heartbeat: systemId %q payload %s", hb.SystemID, hb.Payload)
	}
	select {
	case <-n.DrainRequested():
		t.Fatal("DrainRequested closed without a drain status from the sentinel")
	default:
	}
}

// A sentinel that reports "draining", then "drained": Drain returns nil at "drained", and
// DrainRequested is closed from the first status on.
func TestDrainUntilDrained(t *testing.T) {
	f := newFakeSentinel(t)
	set := func(state string) {
		b, _ := json.Marshal(envelope.DrainPayload{Drain: &envelope.DrainStatus{State: state, By: "self"}})
		raw := json.RawMessage(b)
		f.hbPayload.Store(&raw)
	}
	set(envelope.DrainStateDraining)
	n := connect(t, testConfig(f))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- n.Drain(ctx)
	}()
	select {
	case <-n.DrainRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("DrainRequested not closed while the sentinel reports draining")
	}
	select {
	case err := <-done:
		t.Fatalf("Drain returned %v while the sentinel reports draining", err)
	case <-time.After(3 * drainPoll):
	}
	set(envelope.DrainStateDrained)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Drain = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after drained")
	}
}

// Drain ends with its context.
func TestDrainContextEnds(t *testing.T) {
	f := newFakeSentinel(t)
	b, _ := json.Marshal(envelope.DrainPayload{Drain: &envelope.DrainStatus{State: envelope.DrainStateDraining}})
	raw := json.RawMessage(b)
	f.hbPayload.Store(&raw)
	n := connect(t, testConfig(f))
	ctx, cancel := context.WithTimeout(context.Background(), 3*drainPoll)
	defer cancel()
	if err := n.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want the context's deadline", err)
	}
}

// A reply on a channel that a SecureClose took from under its call belongs to the superseded
// send: supersededOn says so only for that channel and that call.
func TestSupersededOn(t *testing.T) {
	pt := newPendingTable()
	w, err := pt.add("corr1", true)
	if err != nil {
		t.Fatal(err)
	}
	w.setCID("c1")
	if pt.supersededOn("corr1", "c1") {
		t.Fatal("superseded before any SecureClose")
	}
	pt.channelClosed("c1")
	if !pt.supersededOn("corr1", "c1") || pt.supersededOn("corr1", "c2") || pt.supersededOn("other", "c1") || pt.supersededOn("corr1", "") {
		t.Fatal("supersededOn: wrong answer")
	}
}

// A sentinel that keeps reporting "draining": Drain with a context without deadline ends at
// Config.DrainTimeout with the context's deadline error.
func TestDrainAppliesConfigTimeout(t *testing.T) {
	f := newFakeSentinel(t)
	b, _ := json.Marshal(envelope.DrainPayload{Drain: &envelope.DrainStatus{State: envelope.DrainStateDraining, By: "self"}})
	raw := json.RawMessage(b)
	f.hbPayload.Store(&raw)
	cfg := testConfig(f)
	cfg.DrainTimeout = 300 * time.Millisecond
	n := connect(t, cfg)
	done := make(chan error, 1)
	go func() { done <- n.Drain(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain = %v, want the drain timeout's deadline error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Drain without a deadline did not end at Config.DrainTimeout")
	}
}
