package node

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestSecureCloseTwiceForOneChannel: two SecureCloses for the same channel (the sentinel's,
// when it purges a dead replica's bindings, and the one another replica sends when the request
// reaches it on a channel it does not hold) re-send the call once; the second close says
// nothing new and must not fail the call while its re-send is on its way. Found by the chaos
// harness (#20, 30-minute run, key amo4-005809): the call failed with "secure channel closed
// twice", the caller retried it, and the operation ran twice although the re-send was answered.
func TestSecureCloseTwiceForOneChannel(t *testing.T) {
	f := overlaySentinel(t)
	acfg := testConfig(f, "fame.fabric")
	overlay("channel")(&acfg)
	agent := connect(t, acfg)
	release := make(chan struct{})
	var runs atomic.Int32
	ops := Ops{"hold": Unary(func(ctx context.Context, _ json.RawMessage) (any, error) {
		runs.Add(1)
		select { // every run waits for the test, so that the closes come while the call is in flight
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return 42, nil
	})}
	if err := agent.Serve(context.Background(), "math@fame.fabric", ops); err != nil {
		t.Fatal(err)
	}
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
			close(release)
			t.Fatal("the request never reached the agent")
		}
		time.Sleep(time.Millisecond)
	}
	var cid string
	for _, e := range framesOf(f, client.SystemID(), envelope.TypeData) {
		cid = encOf(t, e).Kid
	}
	close1 := &envelope.SecureClose{CID: cid, Reason: "replica gone"}
	close2 := &envelope.SecureClose{CID: cid, Reason: "unknown channel"}
	f.sendTo(client.SystemID(), "__sys__@"+client.AssignedPath(), close1)
	f.sendTo(client.SystemID(), "__sys__@"+client.AssignedPath(), close2)
	for runs.Load() < 2 { // the re-send reached the agent
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("no re-send reached the agent (runs %d)", runs.Load())
		}
		select {
		case r := <-done:
			close(release)
			t.Fatalf("the call ended before its re-send ran: %d, %v", r.v, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	close(release)
	select {
	case r := <-done:
		if r.err != nil || r.v != 42 {
			t.Fatalf("call = %d, %v; want 42 (answered by the re-send)", r.v, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call was never answered")
	}
	if n := len(framesOf(f, client.SystemID(), envelope.TypeData)); n != 2 {
		t.Errorf("client sent %d requests, want 2 (the first and one re-send)", n)
	}
}
