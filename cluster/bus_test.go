package cluster

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ghost joins the shared cluster as an extra sentinel through member i's
// embedded server (its own connection, bus and directory), so a test can
// crash it without disturbing the fixture.
type ghost struct {
	m *Member
}

func newGhost(t *testing.T, i int, id string) *ghost {
	t.Helper()
	cfg := shared.members[i].Config
	cfg.SentinelID = id
	nc, err := Connect(cfg, shared.members[i].Embedded, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := NewBus(nc, cfg, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := NewDirectory(js, bus, cfg, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := &ghost{m: &Member{Config: cfg, Conn: nc, Bus: bus, Directory: dir}}
	t.Cleanup(func() { g.m.Kill() })
	return g
}

// crash stops the ghost as kill -9 would: no bye, no directory withdrawal.
func (g *ghost) crash() { g.m.Kill() }

func TestBusForwardOneHop(t *testing.T) {
	a, c := shared.members[0].Bus, shared.members[2].Bus
	got := make(chan [2]string, 10)
	if err := c.Subscribe(func(from string, env []byte) { got <- [2]string{from, string(env)} }); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(func(string, []byte) {}); err == nil {
		t.Fatal("second Subscribe accepted")
	}
	// The subscription's interest reaches the other servers over the
	// routes asynchronously (core NATS drops what no one listens to yet):
	// probe until it has.
	eventually(t, 5*time.Second, "s2's subscription known on s0", func() bool {
		if err := a.Publish("s2", []byte("probe")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	time.Sleep(50 * time.Millisecond)
	for len(got) > 0 {
		<-got
	}
	env := `{"version":"1.0","id":"e1","frame":{"type":"Data"}}`
	if err := a.Publish("s2", []byte(env)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m[0] != "s0" || m[1] != env {
			t.Fatalf("received %q from %q", m[1], m[0])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("envelope not delivered")
	}
	if err := a.Publish("s0", []byte(env)); err != ErrSelf {
		t.Fatalf("publish to self: %v", err)
	}
	for _, bad := range []string{"", "s2.x", "*", ">", "a b"} {
		if err := a.Publish(bad, []byte(env)); err == nil {
			t.Fatalf("publish to %q accepted", bad)
		}
	}
	// A message on the subject without a sentinel sender is dropped.
	if err := shared.members[0].Conn.Publish(SentinelSubject("shared", "s2"), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish("s2", []byte("after")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m[1] != "after" {
			t.Fatalf("a message without a sender was delivered: %q", m[1])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("envelope not delivered")
	}
}

// TestHeartbeatsMarkDown: a sentinel that stops beating (crash) is marked
// down after MissedBeats heartbeats; one that closes says bye and is down
// at once; draining is seen as draining.
func TestHeartbeatsMarkDown(t *testing.T) {
	t.Parallel() // mostly waiting: runs beside the other slow ones
	obs := shared.members[0].Bus
	var mu sync.Mutex
	events := map[string][]PeerState{}
	at := map[string]time.Time{}
	obs.OnPeer(func(id string, s PeerState) {
		mu.Lock()
		events[id] = append(events[id], s)
		if s == PeerDown {
			at[id] = time.Now()
		}
		mu.Unlock()
	})
	crashed, closed := newGhost(t, 1, "ghost-crash"), newGhost(t, 2, "ghost-close")
	for _, id := range []string{"ghost-crash", "ghost-close"} {
		eventually(t, 5*time.Second, id+" up", func() bool { return obs.State(id) == PeerUp })
	}
	closed.m.Bus.SetDraining(true)
	eventually(t, 5*time.Second, "draining seen", func() bool { return obs.State("ghost-close") == PeerDraining })
	if got := obs.Peers(); !contains(got, "ghost-crash") || !contains(got, "ghost-close") {
		t.Fatalf("peers %v", got)
	}

	crashT := time.Now()
	crashed.crash()
	closeT := time.Now()
	if err := closed.m.Bus.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "crashed ghost down", func() bool { return obs.State("ghost-crash") == PeerDown })
	eventually(t, 5*time.Second, "closed ghost down", func() bool { return obs.State("ghost-close") == PeerDown })
	mu.Lock()
	defer mu.Unlock()
	hb := shared.base.Heartbeat
	crashDown, closeDown := at["ghost-crash"].Sub(crashT), at["ghost-close"].Sub(closeT)
	// Down after the beats were missed, not on one late beat: the check is
	// on the order of events (the bye arrived long before the silence
	// could count), not on a wall-clock bound.
	if !at["ghost-close"].Before(at["ghost-crash"]) {
		t.Fatalf("bye (%v) not seen before the missed beats (%v)", closeDown, crashDown)
	}
	if got := events["ghost-close"]; len(got) != 3 || got[0] != PeerUp || got[1] != PeerDraining || got[2] != PeerDown {
		t.Fatalf("ghost-close transitions %v", got)
	}
	if got := events["ghost-crash"]; len(got) != 2 || got[1] != PeerDown {
		t.Fatalf("ghost-crash transitions %v", got)
	}
	t.Logf("heartbeat %v x %d missed: crash detected after %v; graceful close (bye) after %v", hb, shared.members[0].Config.MissedBeats, crashDown, closeDown)
	if contains(obs.Peers(), "ghost-crash") {
		t.Fatal("a down peer is listed")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
