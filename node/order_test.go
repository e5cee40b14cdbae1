package node

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fame-go/fame/envelope"
)

// checkSeq fails unless every flow's envelopes reached the sentinel with seqIds 0, 1, 2, ...
// in wire order (SYN on the first).
func checkSeq(t *testing.T, who string, got []*envelope.Envelope) {
	t.Helper()
	next := map[string]int64{}
	for _, e := range got {
		if e.FrameType() == envelope.TypeCreditUpdate {
			continue // keeps the seqId it was built with
		}
		want, seen := next[e.FlowID]
		wantFlags := envelope.FlowFlags(0)
		if !seen {
			wantFlags = envelope.FlowSyn
		}
		if e.SeqID != want || e.FlowFlags != wantFlags {
			t.Fatalf("%s: %s on flow %s: seq=%d flags=%d, want %d/%d", who, e.FrameType(), e.FlowID, e.SeqID, e.FlowFlags, want, wantFlags)
		}
		next[e.FlowID] = want + 1
	}
}

// TestConcurrentSendsKeepOrder runs many callers at once (their requests spread over pooled
// and fresh handler goroutines) while a long stream is answered item by item from one
// handler: every item must arrive in order and seqIds must stay consecutive on both nodes'
// flows, past several credit windows.
func TestConcurrentSendsKeepOrder(t *testing.T) {
	f := newFakeSentinel(t)
	agent, client := agentAndClient(t, f, nil)
	ctx := context.Background()
	const callers, each, items = 16, 10, 150

	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var sum int
				if err := client.Call(ctx, "math@fame.fabric", "add", map[string]int{"x": c, "y": i}, &sum); err != nil {
					t.Errorf("add: %v", err)
					return
				} else if sum != c+i {
					t.Errorf("add(%d, %d) = %d", c, i, sum)
				}
			}
		}()
	}
	st, err := client.Stream(ctx, "math@fame.fabric", "count", map[string]int{"n": items})
	if err != nil {
		t.Fatal(err)
	}
	for want := 0; ; want++ {
		raw, err := st.Next(ctx)
		if err == io.EOF {
			if want != items {
				t.Errorf("stream ended after %d items, want %d", want, items)
			}
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		var v int
		if err := json.Unmarshal(raw, &v); err != nil || v != want {
			t.Fatalf("stream item %d = %s (%v)", want, raw, err)
		}
	}
	wg.Wait()
	checkSeq(t, "client", f.received(client.SystemID()))
	checkSeq(t, "agent", f.received(agent.SystemID()))
}

// TestHandlersNeverWaitForEachOther fills every resident worker (and more) with requests
// that only end when the agent closes: a later request must still be answered, and Close
// must end every handler goroutine.
// In a synctest bubble over in-memory pipes (see newBubbleSentinel): the next call goes once
// the agent has started every blocked handler.
func TestHandlersNeverWaitForEachOther(t *testing.T) {
	synctest.Test(t, testHandlersNeverWaitForEachOther)
}

func testHandlersNeverWaitForEachOther(t *testing.T) {
	f := newBubbleSentinel(t)
	agent, client := agentAndClient(t, f, nil)
	const blocked = maxIdleWorkers + 8
	errs := make(chan error, blocked)
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer bcancel()
	for range blocked {
		go func() { errs <- client.Call(bctx, "math@fame.fabric", "block", nil, nil) }()
	}
	waitFor(t, "the blocking requests to reach the agent", func() bool {
		n := 0
		for _, e := range f.received(client.SystemID()) {
			if e.FrameType() == envelope.TypeData {
				n++
			}
		}
		return n >= blocked
	})
	synctest.Wait() // the agent has started their handlers
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var sum int
	if err := client.Call(ctx, "math@fame.fabric", "add", map[string]int{"x": 2, "y": 3}, &sum); err != nil || sum != 5 {
		t.Fatalf("add with %d handlers blocked = %d, %v", blocked, sum, err)
	}
	done := make(chan struct{})
	go func() {
		_ = agent.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("agent.Close did not return: a handler goroutine outlived the node")
	}
	bcancel() // nobody answers the blocked calls now
	for range blocked {
		if err := <-errs; err == nil {
			t.Error("a blocked call succeeded after its agent closed")
		}
	}
}
