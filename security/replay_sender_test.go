package security

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestReplaySenders plays a replayer who rewrites ts (not in the signed bytes) and a sender who
// floods future-dated ids, against an injectable clock.
func TestReplaySenders(t *testing.T) {
	type step struct {
		name    string
		advance time.Duration
		sender  string
		id      string
		ts      time.Duration // relative to the clock after advance
		want    error
		anyOK   bool // the flooder's own envelopes: accepted or refused, either is fine
	}
	flood := func(sender string, n int, ts time.Duration) []step {
		s := make([]step, n)
		for i := range s {
			s[i] = step{name: "flood", sender: sender, id: fmt.Sprint(sender, "-", i), ts: ts, anyOK: true}
		}
		return s
	}
	cat := func(parts ...[]step) []step {
		var all []step
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	const size, budget = 1024, 1024 / 8
	cases := []struct {
		name  string
		steps []step
	}{
		{"rewritten ts replay within the id-cache life", []step{
			{name: "original", sender: "alice", id: "a1", want: nil},
			{name: "after the window, ts rewritten to now", advance: 11 * time.Minute, sender: "alice", id: "a1", want: ErrReplay},
			{name: "ts rewritten into the future", sender: "alice", id: "a1", ts: 30 * time.Second, want: ErrReplay},
		}},
		{"future-dated flood from one sender does not refuse another", cat(
			[]step{{name: "bob before", sender: "bob", id: "b0", want: nil}},
			flood("mallory", 4*budget, 59*time.Second),
			[]step{
				{name: "bob fresh", sender: "bob", id: "b1", want: nil},
				{name: "bob fresh, 1s later", advance: time.Second, sender: "bob", id: "b2", want: nil},
				{name: "carol new sender", sender: "carol", id: "c1", want: nil},
				{name: "bob's old id still remembered", sender: "bob", id: "b0", want: ErrReplay},
			},
		)},
		{"flood evicts only the flooder's own ids", cat(
			[]step{{name: "bob", sender: "bob", id: "b0", ts: -time.Second, want: nil}},
			flood("mallory", 4*budget, 0),
			[]step{
				{name: "bob replay, ts rewritten", sender: "bob", id: "b0", want: ErrReplay},
				{name: "mallory's evicted id replayed at its ts: floor", sender: "mallory", id: "mallory-0", want: ErrStale},
				{name: "mallory fresh", advance: time.Millisecond, sender: "mallory", id: "m-new", want: nil},
			},
		)},
		{"window", []step{
			{name: "too old", sender: "a", id: "x", ts: -10 * time.Minute, want: ErrStale},
			{name: "too far ahead", sender: "a", id: "y", ts: 2 * time.Minute, want: ErrStale},
			{name: "slightly ahead", sender: "a", id: "z", ts: 30 * time.Second, want: nil},
			{name: "own older envelope after a future-dated one", sender: "a", id: "z2", ts: -time.Second, want: nil},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := time.Unix(1_000_000, 0)
			g, err := NewReplayWindow(size, 10*time.Minute, time.Minute, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range c.steps {
				now = now.Add(s.advance)
				err := g.CheckFrom(s.sender, s.id, now.Add(s.ts))
				if s.anyOK {
					if err != nil && !errors.Is(err, ErrStale) {
						t.Fatalf("step %d %q: %v", i, s.name, err)
					}
					continue
				}
				if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
					t.Fatalf("step %d %q (%s %s): got %v, want %v", i, s.name, s.sender, s.id, err, s.want)
				}
			}
			if g.Len() > size {
				t.Fatalf("guard holds %d ids, bound %d", g.Len(), size)
			}
		})
	}
}

// TestReplayManySenders: more senders than the guard holds ids. The least recently active
// senders are dropped; a replay of theirs at the original ts is refused by the floor they
// leave behind, while a new sender's fresh envelope is accepted and the total stays bounded.
func TestReplayManySenders(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g, err := NewReplayWindow(16, 10*time.Minute, time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	first := now
	for i := range 40 {
		if err := g.CheckFrom(fmt.Sprint("s", i), "id", now); err != nil {
			t.Fatalf("sender %d: %v", i, err)
		}
		now = now.Add(time.Millisecond)
	}
	if g.Len() > 16 {
		t.Fatalf("guard holds %d ids, bound 16", g.Len())
	}
	if err := g.CheckFrom("s0", "id", first); !errors.Is(err, ErrStale) {
		t.Fatalf("replay of a dropped sender at its ts: %v, want stale", err)
	}
	if err := g.CheckFrom("new", "id", now); err != nil {
		t.Fatalf("new sender, fresh: %v", err)
	}
	if err := g.CheckFrom("s39", "id", now.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("recent sender's id, ts rewritten: %v, want replay", err)
	}
}
