package node

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestChannelClosedNackReopens: the sentinel nacks a request CHANNEL_CLOSED (the channel it
// was encrypted for lost its replica) and its SecureClose has not arrived, or never will. The
// nack says the request did not run, so the call re-sends it once over a new channel and is
// answered; a SecureClose for the old channel arriving afterwards changes nothing. Seen in CI
// (TestReplicaDrainUnderLoad): a call failed with the nack when it was processed before the
// drain's SecureClose took effect.
func TestChannelClosedNackReopens(t *testing.T) {
	f := overlaySentinel(t)
	acfg := testConfig(f, "fame.fabric")
	overlay("channel")(&acfg)
	agent := connect(t, acfg)
	release := make(chan struct{})
	var runs atomic.Int32
	ops := Ops{"hold": Unary(func(ctx context.Context, _ json.RawMessage) (any, error) {
		if runs.Add(1) == 1 { // the first run stands for the request the sentinel refused
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, context.Canceled
		}
		return 42, nil
	})}
	if err := agent.Serve(context.Background(), "math@fame.fabric", ops); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	ccfg := testConfig(f)
	overlay("channel")(&ccfg)
	client := connect(t, ccfg)

	type result struct {
		v   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		var v int
		err := client.Call(context.Background(), "math@fame.fabric", "hold", nil, &v)
		done <- result{v, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the agent")
		}
		time.Sleep(time.Millisecond)
	}
	reqs := framesOf(f, client.SystemID(), envelope.TypeData)
	if len(reqs) != 1 {
		t.Fatalf("%d requests sent, want 1", len(reqs))
	}
	req := reqs[0]
	cid := encOf(t, req).Kid
	f.sendTo(client.SystemID(), "__sys__@"+client.AssignedPath(), &envelope.DeliveryAck{Ack: envelope.Ack{
		OK: false, Code: envelope.CodeChannelClosed, RefID: req.ID,
		Reason: "channel " + cid + " closed: its replica is gone; re-open the channel"}})

	select {
	case r := <-done:
		if r.err != nil || r.v != 42 {
			t.Fatalf("call = %d, %v; want 42 (answered by the re-send over a new channel)", r.v, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call was never answered")
	}
	reqs = framesOf(f, client.SystemID(), envelope.TypeData)
	if len(reqs) != 2 || reqs[1].ID == req.ID || encOf(t, reqs[1]).Kid == cid {
		t.Fatalf("client sent %d requests; want 2, the second under a new id over a new channel", len(reqs))
	}
	// The SecureClose that was behind the nack: nothing left to re-send, nothing fails.
	f.sendTo(client.SystemID(), "__sys__@"+client.AssignedPath(), &envelope.SecureClose{CID: cid, Reason: "replica gone"})
	var v int
	if err := client.Call(context.Background(), "math@fame.fabric", "hold", nil, &v); err != nil || v != 42 {
		t.Fatalf("next call = %d, %v", v, err)
	}
	if n := runs.Load(); n != 3 {
		t.Fatalf("handler ran %d times, want 3 (the refused stand-in, the re-send, the next call)", n)
	}
}
