package security

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestReplayWindow: a replay is refused after the window (stale ts) and after the guard had
// to forget its id to stay within its size (floor), and ts too far ahead or missing is refused.
func TestReplayWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g, err := NewReplayWindow(4, 10*time.Minute, time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	want := func(step string, err, target error) {
		t.Helper()
		if target == nil && err != nil || target != nil && !errors.Is(err, target) {
			t.Fatalf("%s: got %v, want %v", step, err, target)
		}
	}
	ts := now
	want("first", g.CheckAt("a", ts), nil)
	want("same id", g.CheckAt("a", ts), ErrReplay)
	want("same id, rewritten ts", g.CheckAt("a", ts.Add(time.Second)), ErrReplay)
	want("future", g.CheckAt("f", now.Add(2*time.Minute)), ErrStale)
	want("slightly ahead", g.CheckAt("g", now.Add(30*time.Second)), nil)
	want("no ts", g.CheckAt("h", time.Time{}), ErrStale)
	want("empty id", g.CheckAt("", now), ErrReplay)

	// After 10 minutes the original bytes come back: stale.
	now = now.Add(10 * time.Minute)
	want("replay after the window", g.CheckAt("a", ts), ErrStale)

	// Fill the guard past its size inside the window: "b" is forgotten early, and its replay
	// (same ts) is refused by the floor, as is anything no newer.
	now = now.Add(time.Minute)
	tb := now.Add(-time.Second)
	want("b", g.CheckAt("b", tb), nil)
	for i := range 8 {
		want("filler", g.CheckAt(fmt.Sprint("x", i), now.Add(time.Duration(i)*time.Millisecond)), nil)
	}
	if s, _ := g.senders.Peek(""); s == nil || s.ids.Contains("b") {
		t.Fatal("b still remembered; the test needs it evicted")
	}
	want("replay after eviction", g.CheckAt("b", tb), ErrStale)
	want("fresh id after eviction", g.CheckAt("y", now.Add(time.Second)), nil)
	// One sender (here the anonymous one of CheckAt) holds at most its budget: size/8, at
	// least min(size, 64), so the whole 4 here.
	if g.Len() != 4 {
		t.Fatalf("len %d, want 4", g.Len())
	}
	if _, err := NewReplayWindow(1, time.Second, -time.Second, nil); err == nil {
		t.Fatal("negative skew accepted")
	}
}
