package wsengine

import (
	"fmt"
	"testing"

	"github.com/fame-go/fame/envelope"
)

func TestStamps(t *testing.T) {
	var s Stamps
	s.Own = "own"
	type want struct {
		flow  string
		seq   int64
		flags envelope.FlowFlags
	}
	for i, w := range []want{
		{"own", 0, envelope.FlowSyn}, {"own", 1, 0}, {"a", 0, envelope.FlowSyn}, {"b", 0, envelope.FlowSyn},
		{"a", 1, 0}, {"a", 2, 0}, {"own", 2, 0}, {"b", 1, 0},
	} {
		seq, flags := s.Next([]byte(w.flow))
		if seq != w.seq || flags != w.flags {
			t.Fatalf("stamp %d on %s: %d %v, want %d %v", i, w.flow, seq, flags, w.seq, w.flags)
		}
	}
	// Undo takes back a flow's last stamp: the next envelope gets the same number.
	for _, tc := range []struct {
		flow string
		seq  int64
	}{{"a", 3}, {"own", 3}, {"new", 0}} {
		seq, flags := s.Next([]byte(tc.flow))
		if seq != tc.seq {
			t.Fatalf("%s: stamp %d, want %d", tc.flow, seq, tc.seq)
		}
		s.Undo([]byte(tc.flow), seq)
		if again, againFlags := s.Next([]byte(tc.flow)); again != seq || againFlags != flags {
			t.Fatalf("%s after Undo: %d %v, want %d %v again", tc.flow, again, againFlags, seq, flags)
		}
	}
	// StartOwn: the node's NodeAttach used seqId 0 before the link ran.
	var n Stamps
	n.Own = "own"
	n.StartOwn(1)
	if seq, flags := n.Next([]byte("own")); seq != 1 || flags != 0 {
		t.Fatalf("after StartOwn(1): %d %v, want 1 and no SYN", seq, flags)
	}
	// The map is bounded: past MaxFlows flows every flow starts again at SYN.
	var b Stamps
	for i := range MaxFlows + 1 {
		b.Next([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}
	if len(b.seq) > MaxFlows {
		t.Fatalf("%d flows kept, bound %d", len(b.seq), MaxFlows)
	}
}

func TestRecvCredits(t *testing.T) {
	var r RecvCredits
	grants := map[string]int{}
	for range 3 * CreditThreshold {
		for _, f := range []string{"first", "second", "third"} {
			if r.Count([]byte(f)) {
				grants[f]++
			}
		}
	}
	for _, f := range []string{"first", "second", "third"} {
		if grants[f] != 3 {
			t.Fatalf("flow %s: %d grants after %d envelopes, want one per %d", f, grants[f], 3*CreditThreshold, CreditThreshold)
		}
	}
	if len(r.more) != 2 || r.flow != "first" {
		t.Fatalf("the first flow is kept inline, the others in the map: inline %q, map %v", r.flow, r.more)
	}
}

func TestGate(t *testing.T) {
	b := func(n int) *[]byte { x := make([]byte, n); return &x }
	g := NewGate(1000)
	for i := 0; i < CreditWindow; i++ {
		if !g.Admit("a", b(1)) {
			t.Fatalf("envelope %d held with credits left", i)
		}
	}
	first, second := b(10), b(20)
	if g.Admit("a", first) || g.Admit("a", second) || g.Held() != 2 {
		t.Fatal("envelopes admitted at zero credits")
	}
	if !g.Admit("b", b(1)) {
		t.Fatal("another flow was held by flow a's exhaustion")
	}
	if out := g.Grant("a", 1, nil); len(out) != 1 || out[0] != first || g.Held() != 1 {
		t.Fatalf("grant 1 released %d (held %d), want the first one", len(out), g.Held())
	}
	if out := g.Grant("a", 100, nil); len(out) != 1 || out[0] != second || g.Held() != 0 || g.credits["a"] != CreditWindow-1 {
		t.Fatalf("big grant released %d, held %d, credits %d; want 1, 0, %d (clamped)", len(out), g.Held(), g.credits["a"], CreditWindow-1)
	}
	// Refund and Spent.
	g.Spent("c", CreditWindow)
	if g.Admit("c", b(1)) {
		t.Fatal("a flow whose window was spent outside the gate was admitted")
	}
	g.Spent("d", CreditWindow-1)
	if !g.Admit("d", b(1)) {
		t.Fatal("the last credit was refused")
	}
	g.Refund("d")
	if !g.Admit("d", b(1)) {
		t.Fatal("a refunded credit was not given back")
	}
	// Bounded in bytes: full once what it holds reaches the bound; a grant makes room and
	// wakes the waiter.
	g.Spent("e", CreditWindow)
	g.Admit("e", b(1000))
	if !g.Full() {
		t.Fatal("a gate holding its byte bound is not full")
	}
	room := g.Room()
	g.Grant("e", 1, nil)
	select {
	case <-room:
	default:
		t.Fatal("a grant that made room did not wake the waiters")
	}
	var put int
	g.Drop(func(*[]byte) { put++ })
	if put != 1 || g.Held() != 0 {
		t.Fatalf("Drop gave back %d buffers, holds %d; want 1 (flow c's), 0", put, g.Held())
	}
}

// TestGateForgetsFlows: the gate keeps credit counters for at most MaxFlows flows; past them
// it starts afresh, and a flow with envelopes held stays held until its grant.
func TestGateForgetsFlows(t *testing.T) {
	b := func() *[]byte { x := make([]byte, 1); return &x }
	g := NewGate(1 << 20)
	for range CreditWindow {
		g.Admit("starved", b())
	}
	if g.Admit("starved", b()) {
		t.Fatal("an envelope past the window was admitted")
	}
	for i := range 2*MaxFlows + 1 {
		if !g.Admit(fmt.Sprintf("flow-%d", i), b()) {
			t.Fatalf("the first envelope of flow %d was held", i)
		}
		if len(g.credits) > MaxFlows {
			t.Fatalf("%d flows counted, bound %d", len(g.credits), MaxFlows)
		}
	}
	if g.Admit("starved", b()) || g.Held() != 2 {
		t.Fatalf("a flow with envelopes held was let through after the counters were cleared (held %d)", g.Held())
	}
	if got := g.Grant("starved", CreditWindow, nil); len(got) != 2 {
		t.Fatalf("grant released %d envelopes, want 2", len(got))
	}
}
