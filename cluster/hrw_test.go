package cluster

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func replicas(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("replica-%02d", i)
	}
	return out
}

func TestHRWPickNextRank(t *testing.T) {
	live := replicas(5)
	for _, tc := range []struct {
		name string
		live []string
		ok   bool
	}{
		{"empty", nil, false},
		{"only empty ids", []string{"", ""}, false},
		{"one", []string{"r"}, true},
		{"five", live, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k := range 200 {
				key := fmt.Sprintf("sid-%d", k)
				p, ok := Pick(key, tc.live)
				if ok != tc.ok {
					t.Fatalf("Pick ok=%v", ok)
				}
				if !ok {
					continue
				}
				// Deterministic and independent of the order of the set:
				// every sentinel computes the same replica.
				rev := slices.Clone(tc.live)
				slices.Reverse(rev)
				if q, _ := Pick(key, rev); q != p {
					t.Fatalf("%s: %s vs %s for a reordered set", key, p, q)
				}
				rank := Rank(key, tc.live)
				if len(rank) != len(tc.live) || rank[0] != p {
					t.Fatalf("%s: rank %v, pick %s", key, rank, p)
				}
				n, ok := Next(key, tc.live, p)
				if len(tc.live) == 1 {
					if ok {
						t.Fatalf("Next of the only replica: %s", n)
					}
					continue
				}
				if !ok || n != rank[1] {
					t.Fatalf("%s: next %s, rank %v", key, n, rank)
				}
				// Re-pin after the loss of p = Pick over the rest = Next.
				rest := slices.DeleteFunc(slices.Clone(tc.live), func(s string) bool { return s == p })
				if q, _ := Pick(key, rest); q != n {
					t.Fatalf("%s: next %s but pick without %s is %s", key, n, p, q)
				}
			}
		})
	}
	if got := Rank("k", []string{"b", "a", "b", ""}); len(got) != 2 {
		t.Fatalf("rank keeps duplicates or empty ids: %v", got)
	}
}

// TestHRWDistribution: 10 replicas, 100k keys: each gets its share within
// 5 % (binomial sd is ~1 %).
func TestHRWDistribution(t *testing.T) {
	live := replicas(10)
	const keys = 100_000
	count := map[string]int{}
	for k := range keys {
		p, _ := Pick(fmt.Sprintf("client-session-%d", k), live)
		count[p]++
	}
	mean := float64(keys) / float64(len(live))
	worst := 0.0
	for _, id := range live {
		dev := math.Abs(float64(count[id])-mean) / mean
		worst = max(worst, dev)
		if dev > 0.05 {
			t.Errorf("%s got %d keys, mean %.0f", id, count[id], mean)
		}
	}
	t.Logf("10 replicas, %d keys: worst deviation from the mean %.2f%%", keys, 100*worst)
}

// TestHRWMinimalMovement: losing a replica moves only its keys (each to
// its Next); adding one moves only keys to the new one, about 1/(n+1).
func TestHRWMinimalMovement(t *testing.T) {
	live := replicas(10)
	const keys = 50_000
	lost := live[3]
	without := slices.DeleteFunc(slices.Clone(live), func(s string) bool { return s == lost })
	added := append(slices.Clone(live), "replica-new")
	moved, movedAdd := 0, 0
	for k := range keys {
		key := fmt.Sprintf("cid-%d", k)
		before, _ := Pick(key, live)
		after, _ := Pick(key, without)
		if before != after {
			moved++
			if before != lost {
				t.Fatalf("%s moved from %s, a replica that stayed", key, before)
			}
			if n, _ := Next(key, live, lost); n != after {
				t.Fatalf("%s re-pinned to %s, Next says %s", key, after, n)
			}
		}
		grown, _ := Pick(key, added)
		if grown != before {
			movedAdd++
			if grown != "replica-new" {
				t.Fatalf("%s moved from %s to %s on an addition", key, before, grown)
			}
		}
	}
	frac, fracAdd := float64(moved)/keys, float64(movedAdd)/keys
	if frac < 0.07 || frac > 0.13 || fracAdd < 0.06 || fracAdd > 0.12 {
		t.Fatalf("moved %.3f on removal (want ~0.10), %.3f on addition (want ~0.09)", frac, fracAdd)
	}
	t.Logf("remove 1 of 10: %.2f%% of keys moved; add an 11th: %.2f%% moved", 100*frac, 100*fracAdd)
}

func BenchmarkHRWPick(b *testing.B) {
	live := replicas(8)
	b.ReportAllocs()
	for b.Loop() {
		Pick("a-client-session-id", live)
	}
}
