package cluster

import (
	"slices"
	"testing"
	"time"
)

// TestDirectory: a replica published on one sentinel is live on another;
// draining takes it out of the live set; the replicas of a sentinel that
// crashes are down as soon as the heartbeats say so, and leave every view
// when their per-key TTL runs out (nobody deletes them).
func TestDirectory(t *testing.T) {
	t.Parallel() // mostly waiting: runs beside the other slow ones
	const pool = "math@*.fame.fabric"
	a, c := shared.members[0].Directory, shared.members[2].Directory
	a.Set(Replica{ID: "dir-r1", Pools: []string{pool, "other@*.fame.fabric"}})
	if !slices.Contains(a.Live(pool), "dir-r1") {
		t.Fatal("own replica not live locally at once")
	}
	eventually(t, 5*time.Second, "dir-r1 live on s2", func() bool { return slices.Contains(c.Live(pool), "dir-r1") })
	if r, ok := c.Get("dir-r1"); !ok || r.Sentinel != "s0" || r.State != ReplicaUp {
		t.Fatalf("s2 sees %+v %v", r, ok)
	}
	a.Set(Replica{ID: "dir-r1", State: ReplicaDraining, Pools: []string{pool}})
	eventually(t, 5*time.Second, "draining leaves the live set", func() bool {
		r, _ := c.Get("dir-r1")
		return r.State == ReplicaDraining && !slices.Contains(c.Live(pool), "dir-r1")
	})
	a.Remove("dir-r1")
	eventually(t, 5*time.Second, "removed on s2", func() bool { _, ok := c.Get("dir-r1"); return !ok })

	g := newGhost(t, 1, "ghost-dir")
	g.m.Directory.Set(Replica{ID: "dir-ghost", Pools: []string{pool}})
	eventually(t, 5*time.Second, "ghost replica live on s2", func() bool { return slices.Contains(c.Live(pool), "dir-ghost") })
	g.crash()
	crashed := time.Now()
	down := eventually(t, 10*time.Second, "ghost replica down", func() bool {
		r, ok := c.Get("dir-ghost")
		return ok && r.State == ReplicaDown
	})
	if slices.Contains(c.Live(pool), "dir-ghost") {
		t.Fatal("a replica of a down sentinel is live")
	}
	gone := eventually(t, 4*shared.members[0].Config.DirectoryTTL, "ghost replica expired", func() bool {
		_, ok := c.Get("dir-ghost")
		return !ok
	})
	t.Logf("crashed sentinel's replica: down after %v (heartbeats), entry expired after %v (per-key TTL %v)",
		down, time.Since(crashed).Round(time.Millisecond), shared.members[0].Config.DirectoryTTL)
	_ = gone
}
