package node

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/fame-go/fame/envelope"
)

// sentOnFlow counts the non-CreditUpdate envelopes the sentinel got from child on its
// link's own flow (the one NodeAttach opened).
func sentOnFlow(f *fakeSentinel, child string) int {
	got := f.received(child)
	if len(got) == 0 {
		return 0
	}
	flow, n := got[0].FlowID, 0
	for _, e := range got {
		if e.FlowID == flow && e.FrameType() != envelope.TypeCreditUpdate {
			n++
		}
	}
	return n
}

// Runs in a synctest bubble over in-memory pipes: synctest.Wait returns only once every
// goroutine is blocked, so "the client sent nothing past its window" is checked at rest,
// not after a guessed pause.
func TestSenderHoldsAtZeroCreditsAndResumes(t *testing.T) {
	synctest.Test(t, testSenderHoldsAtZeroCreditsAndResumes)
}

func testSenderHoldsAtZeroCreditsAndResumes(t *testing.T) {
	f := newBubbleSentinel(t)
	_, client := agentAndClient(t, f, nil)
	f.noCredits.Store(true)
	const calls = 60
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		go func() {
			var sum int
			err := client.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": i, "y": 1}, &sum)
			if err == nil && sum != i+1 {
				t.Errorf("add(%d, 1) = %d", i, sum)
			}
			errs <- err
		}()
	}
	waitFor(t, "the client to spend its window", func() bool { return sentOnFlow(f, client.SystemID()) >= creditWindow })
	synctest.Wait()
	if got := sentOnFlow(f, client.SystemID()); got != creditWindow {
		t.Fatalf("client sent %d envelopes on its flow without a CreditUpdate, want exactly %d", got, creditWindow)
	}
	f.noCredits.Store(false)
	for _, id := range f.childIDs() {
		f.grantOwed(id)
	}
	for i := 0; i < calls; i++ {
		if err := <-errs; err != nil {
			t.Errorf("call: %v", err)
		}
	}
	if got := sentOnFlow(f, client.SystemID()); got != calls+1 {
		t.Errorf("client sent %d envelopes on its flow, want %d (attach + calls)", got, calls+1)
	}
}
