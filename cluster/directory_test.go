package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// TestDirectoryStaleSelfEntry: an entry that names this sentinel for a replica not attached
// here (a put that raced the replica's removal, or one left by a previous run with the same
// id) is not taken in: live, it would have no connection behind it and its calls would be
// refused NO_ROUTE. Every other sentinel sees it as that sentinel's, and Serving lists it.
func TestDirectoryStaleSelfEntry(t *testing.T) {
	t.Parallel()
	const pool = "stale@*.fame.fabric"
	a, c := shared.members[0].Directory, shared.members[2].Directory
	js, err := jetstream.New(shared.members[2].Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, DirectoryBucket(shared.members[0].Config.Name))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(Replica{Sentinel: shared.members[0].Config.SentinelID, State: ReplicaUp, Pools: []string{pool}})
	if _, err := kv.Put(ctx, dirKey("dir-stale"), v); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = kv.Delete(context.Background(), dirKey("dir-stale")) }()
	eventually(t, 5*time.Second, "the entry on s2", func() bool { return slices.Contains(c.Live(pool), "dir-stale") })
	if rs := c.Serving(pool); len(rs) != 1 || rs[0].ID != "dir-stale" || rs[0].State != ReplicaUp {
		t.Fatalf("s2 Serving = %+v, want dir-stale up", rs)
	}
	time.Sleep(300 * time.Millisecond) // the watch of s0 has had it too
	if _, ok := a.Get("dir-stale"); ok || len(a.Live(pool)) != 0 || len(a.Serving(pool)) != 0 {
		t.Fatalf("s0 took in an entry naming itself for a replica not attached to it: %v %v", a.Live(pool), a.Serving(pool))
	}
}

// TestDirectoryLeftServing: a replica that leaves the directory (removed by its sentinel, or
// expired) is listed by Serving as down for Grace, on its own sentinel and on the others, so
// that a pool between two attaches of its replica reads as away, not absent; then not at all.
func TestDirectoryLeftServing(t *testing.T) {
	t.Parallel()
	const pool = "left@*.fame.fabric"
	a, c := shared.members[0].Directory, shared.members[2].Directory
	a.Set(Replica{ID: "dir-left", Pools: []string{pool}})
	eventually(t, 5*time.Second, "dir-left live on s2", func() bool { return slices.Contains(c.Live(pool), "dir-left") })
	a.Remove("dir-left")
	eventually(t, 5*time.Second, "dir-left gone from s2", func() bool { _, ok := c.Get("dir-left"); return !ok })
	for name, d := range map[string]*Directory{"s0": a, "s2": c} {
		if rs := d.Serving(pool); len(d.Live(pool)) != 0 || len(rs) != 1 || rs[0].ID != "dir-left" || rs[0].State != ReplicaDown {
			t.Fatalf("%s: Live %v, Serving %+v; want none live and dir-left down", name, d.Live(pool), rs)
		}
	}
	grace := shared.members[0].Config.Grace
	eventually(t, grace+5*time.Second, "dir-left forgotten after the grace window", func() bool {
		return len(a.Serving(pool)) == 0 && len(c.Serving(pool)) == 0
	})
	a.Set(Replica{ID: "dir-left", Pools: []string{pool}})
	if rs := a.Serving(pool); len(rs) != 1 || rs[0].State != ReplicaUp {
		t.Fatalf("back: Serving %+v, want dir-left up once", rs)
	}
	a.Remove("dir-left")
}

// TestDirectoryExpiredEntryOfLiveSentinel: an entry whose per-key TTL ran out (a purge: what
// the MaxAge marker reads as) while its sentinel's heartbeats are heard stays in the views:
// its sentinel's refreshes were held up by a KV write stall, and it republishes it at its
// next refresh. A delete (a replica that detached) still takes it out at once.
func TestDirectoryExpiredEntryOfLiveSentinel(t *testing.T) {
	t.Parallel()
	const pool = "exp@*.fame.fabric"
	a := shared.members[0].Directory
	js, err := jetstream.New(shared.members[2].Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, DirectoryBucket(shared.members[0].Config.Name))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(Replica{Sentinel: shared.members[1].Config.SentinelID, State: ReplicaUp, Pools: []string{pool}})
	if _, err := kv.Put(ctx, dirKey("dir-exp"), v); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "dir-exp live on s0", func() bool { return slices.Contains(a.Live(pool), "dir-exp") })
	if err := kv.Purge(ctx, dirKey("dir-exp")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // s0's watch has had the purge
	if !slices.Contains(a.Live(pool), "dir-exp") {
		t.Fatal("an expired entry of a live sentinel left the view")
	}
	if _, err := kv.Put(ctx, dirKey("dir-exp"), v); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, dirKey("dir-exp")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "dir-exp deleted on s0", func() bool { _, ok := a.Get("dir-exp"); return !ok })
}
