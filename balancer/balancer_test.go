package balancer

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
)

func members(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("R%015d", i)} // 16-char system-id-like
	}
	return ms
}

func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("client-%06d-sid", i)
	}
	return ks
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		wantErr bool
		want    string
	}{
		{"", false, "*balancer.HRW"},
		{"hrw", false, "*balancer.HRW"},
		{"round_robin", false, "*balancer.RoundRobin"},
		{"random", false, "balancer.Random"},
		{"least_connections", false, "balancer.LeastConnections"},
		{"sticky-hrw", true, ""},
		{"HRW", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.name)
			if tc.wantErr {
				if !errors.Is(err, ErrUnknownStrategy) {
					t.Fatalf("New(%q) err = %v, want ErrUnknownStrategy", tc.name, err)
				}
				var ue *UnknownStrategyError
				if !errors.As(err, &ue) || ue.Name != tc.name {
					t.Fatalf("New(%q) err = %#v, want UnknownStrategyError{%q}", tc.name, err, tc.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tc.name, err)
			}
			if got := fmt.Sprintf("%T", s); got != tc.want {
				t.Fatalf("New(%q) = %s, want %s", tc.name, got, tc.want)
			}
		})
	}
}

func allStrategies(t *testing.T) map[string]Strategy {
	out := map[string]Strategy{}
	for _, n := range Names() {
		s, err := New(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	return out
}

func TestEmptyAndSingle(t *testing.T) {
	for name, s := range allStrategies(t) {
		t.Run(name, func(t *testing.T) {
			if id, ok := s.Pick("k", nil); ok || id != "" {
				t.Fatalf("Pick(nil) = %q, %v; want \"\", false", id, ok)
			}
			if id, ok := s.Pick("k", []Member{}); ok || id != "" {
				t.Fatalf("Pick(empty) = %q, %v", id, ok)
			}
			one := []Member{{ID: "only", Load: 1000}}
			for i := 0; i < 10; i++ {
				if id, ok := s.Pick(fmt.Sprint(i), one); !ok || id != "only" {
					t.Fatalf("Pick(single) = %q, %v", id, ok)
				}
			}
		})
	}
}

// Every strategy must return one of the members it was given.
func TestPickReturnsAMember(t *testing.T) {
	ms := members(5)
	ms[2].Load = -7 // negative loads must not break anything
	valid := map[string]bool{}
	for _, m := range ms {
		valid[m.ID] = true
	}
	for name, s := range allStrategies(t) {
		for _, k := range keys(200) {
			id, ok := s.Pick(k, ms)
			if !ok || !valid[id] {
				t.Fatalf("%s: Pick(%q) = %q, %v", name, k, id, ok)
			}
		}
	}
}

func TestHRWDeterministic(t *testing.T) {
	ms := members(7)
	rev := make([]Member, len(ms))
	for i := range ms {
		rev[len(ms)-1-i] = ms[i]
	}
	a, b := NewHRW(DefaultLoadFactor), NewHRW(DefaultLoadFactor)
	for _, k := range keys(2000) {
		x, _ := a.Pick(k, ms)
		y, _ := b.Pick(k, rev) // member order must not matter
		if x != y {
			t.Fatalf("key %q: %q vs %q", k, x, y)
		}
	}
}

// Pinned values guard against accidental changes of the hash: sentinels of
// different versions (or restarted ones) must agree on the owner of a key.
func TestHashStable(t *testing.T) {
	pins := map[string]uint64{
		"":                       0xff2e69699c4857e,
		"a":                      0xf5b31a74d94bbc23,
		"abcdefgh":               0x405298153a374cb,
		"abcdefghi":              0x2635da1db565871b,
		"2bDFT5akYCfhjCen05Vmym": 0x5fa91430c8518ac6,
	}
	for s, want := range pins {
		if got := hashString(s); got != want {
			t.Errorf("hashString(%q) = %#x, want %#x", s, got, want)
		}
	}
	h := NewHRW(DefaultLoadFactor)
	ms := members(3)
	for k, want := range map[string]string{"k1": "R000000000000001", "k3": "R000000000000001", "k4": "R000000000000000"} {
		if got, _ := h.Pick(k, ms); got != want {
			t.Errorf("Pick(%q) = %s, want %s", k, got, want)
		}
	}
}

func TestHRWDistribution(t *testing.T) {
	// Unbounded HRW so the test measures the hash, not the load bound.
	h := NewHRW(math.Inf(1))
	for _, n := range []int{3, 10} {
		ms := members(n)
		count := map[string]int{}
		const N = 30000
		for _, k := range keys(N) {
			id, _ := h.Pick(k, ms)
			count[id]++
		}
		exp := float64(N) / float64(n)
		for id, c := range count {
			if math.Abs(float64(c)-exp) > 0.08*exp {
				t.Errorf("n=%d %s got %d keys, expected ~%.0f", n, id, c, exp)
			}
		}
		if len(count) != n {
			t.Errorf("n=%d only %d members used", n, len(count))
		}
	}
}

func TestHRWMinimalMovement(t *testing.T) {
	h := NewHRW(DefaultLoadFactor)
	ms := members(3)
	ks := keys(10000)
	before := make(map[string]string, len(ks))
	for _, k := range ks {
		before[k], _ = h.Pick(k, ms)
	}
	for removed := range ms {
		rest := append(append([]Member{}, ms[:removed]...), ms[removed+1:]...)
		moved, lost := 0, 0
		for _, k := range ks {
			after, _ := h.Pick(k, rest)
			if before[k] == ms[removed].ID {
				lost++
				continue
			}
			if after != before[k] {
				moved++
			}
		}
		if moved != 0 {
			t.Errorf("removing %s moved %d keys that it did not own", ms[removed].ID, moved)
		}
		if lost < 2500 || lost > 4200 {
			t.Errorf("removed member owned %d of 10000 keys, expected about a third", lost)
		}
	}
}

func TestHRWBoundedLoad(t *testing.T) {
	for _, c := range []float64{1, 1.25, 2} {
		h := NewHRW(c)
		ms := members(4)
		// A skewed key set: with the bound off, the first keys would favour
		// whichever member ranks first for "hot".
		for i := 0; i < 4000; i++ {
			k := "hot"
			if i%10 == 0 {
				k = fmt.Sprint("k", i)
			}
			limit := h.capacity(ms)
			id, _ := h.Pick(k, ms)
			for j := range ms {
				if ms[j].ID == id {
					if ms[j].Load >= limit {
						t.Fatalf("c=%v: picked %s with load %d >= capacity %d", c, id, ms[j].Load, limit)
					}
					ms[j].Load++
				}
			}
			var total int64
			for _, m := range ms {
				total += m.Load
			}
			maxAllowed := int64(math.Ceil(c * float64(total) / float64(len(ms))))
			for _, m := range ms {
				if m.Load > maxAllowed+1 {
					t.Fatalf("c=%v: member %s load %d exceeds ceil(c*avg)=%d", c, m.ID, m.Load, maxAllowed)
				}
			}
		}
	}
}

// With loads in bound, bounded HRW equals plain HRW; once the winner is full
// the key goes to its second choice, and back when the winner has room again.
func TestHRWSpillToSecondChoice(t *testing.T) {
	h := NewHRW(DefaultLoadFactor)
	ms := members(3)
	k := "spill-key"
	first, _ := h.Pick(k, ms)
	var rest []Member
	for _, m := range ms {
		if m.ID != first {
			rest = append(rest, m)
		}
	}
	second, _ := NewHRW(math.Inf(1)).Pick(k, rest)
	for i := range ms {
		if ms[i].ID == first {
			ms[i].Load = 10 // capacity = ceil(1.25*11/3) = 5
		}
	}
	if got, _ := h.Pick(k, ms); got != second {
		t.Fatalf("overloaded winner: got %s, want second choice %s", got, second)
	}
	for i := range ms {
		ms[i].Load = 1
	}
	if got, _ := h.Pick(k, ms); got != first {
		t.Fatalf("balanced: got %s, want %s", got, first)
	}
}

func TestRoundRobin(t *testing.T) {
	rr := &RoundRobin{}
	ms := members(3)
	var got []string
	for i := 0; i < 6; i++ {
		id, _ := rr.Pick("x", ms)
		got = append(got, id)
	}
	want := []string{ms[0].ID, ms[1].ID, ms[2].ID, ms[0].ID, ms[1].ID, ms[2].ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestRoundRobinConcurrentFair(t *testing.T) {
	rr := &RoundRobin{}
	ms := members(4)
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			for i := 0; i < 1000; i++ {
				id, _ := rr.Pick("", ms)
				local[id]++
			}
			mu.Lock()
			for k, v := range local {
				count[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, m := range ms {
		if count[m.ID] != 2000 {
			t.Fatalf("round robin unfair under concurrency: %v", count)
		}
	}
}

func TestRandomPrefersLowerLoad(t *testing.T) {
	ms := []Member{{ID: "busy", Load: 100}, {ID: "idle", Load: 0}}
	for i := 0; i < 200; i++ {
		if id, _ := (Random{}).Pick("", ms); id != "idle" {
			t.Fatalf("two choices over two members must take the idle one, got %s", id)
		}
	}
	// With equal loads both members are used.
	eq := members(3)
	seen := map[string]bool{}
	for i := 0; i < 300; i++ {
		id, _ := (Random{}).Pick("", eq)
		seen[id] = true
	}
	if len(seen) != 3 {
		t.Fatalf("random used only %v", seen)
	}
}

func TestLeastConnections(t *testing.T) {
	lc := LeastConnections{}
	ms := []Member{{ID: "a", Load: 5}, {ID: "b", Load: 2}, {ID: "c", Load: 9}}
	if id, _ := lc.Pick("k", ms); id != "b" {
		t.Fatalf("got %s want b", id)
	}
	// Ties: follow the HRW ranking among the tied members, deterministically.
	tied := []Member{{ID: "a", Load: 1}, {ID: "b", Load: 1}, {ID: "c", Load: 3}}
	h := NewHRW(math.Inf(1))
	spread := map[string]int{}
	for _, k := range keys(300) {
		want, _ := h.Pick(k, tied[:2])
		got, _ := lc.Pick(k, tied)
		if got != want {
			t.Fatalf("key %s: got %s want HRW tie-break %s", k, got, want)
		}
		spread[got]++
	}
	if spread["a"] == 0 || spread["b"] == 0 || spread["c"] != 0 {
		t.Fatalf("tie-break spread %v", spread)
	}
}

func TestPickZeroAllocs(t *testing.T) {
	ms := members(16)
	for name, s := range allStrategies(t) {
		if a := testing.AllocsPerRun(200, func() { s.Pick("2bDFT5akYCfhjCen05Vmym", ms) }); a != 0 {
			t.Errorf("%s: %v allocs per Pick", name, a)
		}
	}
}

func TestConcurrentPick(t *testing.T) {
	ms := members(5)
	for name, s := range allStrategies(t) {
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, k := range keys(500) {
					if _, ok := s.Pick(k, ms); !ok {
						t.Errorf("%s: Pick failed", name)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 64} {
		ms := members(n)
		for i := range ms {
			ms[i].Load = int64(i % 5)
		}
		for _, name := range Names() {
			s, _ := New(name)
			b.Run(fmt.Sprintf("%s/members=%d", name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					s.Pick("2bDFT5akYCfhjCen05Vmym", ms)
				}
			})
		}
	}
}
