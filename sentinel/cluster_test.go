package sentinel

import (
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/stickiness"
)

// memCluster links in-process sentinels the way package cluster does over NATS: a bus that
// delivers to each sentinel's subscriber and a directory every sentinel sees.
type memCluster struct {
	mu       sync.Mutex
	subs     map[string]func(from string, env []byte)
	sent     []busMsg // every publish, for the assertions
	repls    map[string]cluster.Replica
	draining map[string]bool // sentinels whose heartbeats say draining
}

// setDraining makes sentinel id draining as its peers see it (what Bus.SetDraining does).
func (m *memCluster) setDraining(id string) {
	m.mu.Lock()
	if m.draining == nil {
		m.draining = map[string]bool{}
	}
	m.draining[id] = true
	m.mu.Unlock()
}

// effective applies sentinel state to an entry, as cluster.Directory does. Caller holds mu.
func (m *memCluster) effective(r cluster.Replica) cluster.Replica {
	if m.draining[r.Sentinel] && r.State == cluster.ReplicaUp {
		r.State = cluster.ReplicaDraining
	}
	return r
}

type busMsg struct {
	from, to string
	data     []byte
}

func newMemCluster() *memCluster {
	return &memCluster{subs: map[string]func(string, []byte){}, repls: map[string]cluster.Replica{}}
}

func (m *memCluster) published() []busMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

type memBus struct {
	m    *memCluster
	self string
}

func (b *memBus) Publish(to string, env []byte) error {
	b.m.mu.Lock()
	fn := b.m.subs[to]
	b.m.sent = append(b.m.sent, busMsg{b.self, to, slices.Clone(env)})
	b.m.mu.Unlock()
	if fn != nil {
		go fn(b.self, slices.Clone(env)) // NATS delivers on its own goroutine
	}
	return nil
}

func (b *memBus) Subscribe(fn func(from string, env []byte)) error {
	b.m.mu.Lock()
	b.m.subs[b.self] = fn
	b.m.mu.Unlock()
	return nil
}

func (b *memBus) State(id string) cluster.PeerState {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	if _, ok := b.m.subs[id]; ok {
		if b.m.draining[id] {
			return cluster.PeerDraining
		}
		return cluster.PeerUp
	}
	return cluster.PeerDown
}

func (b *memBus) OnPeer(func(string, cluster.PeerState)) {}

type memDir struct {
	m    *memCluster
	self string
}

func (d *memDir) Set(r cluster.Replica) {
	r.Sentinel = d.self
	if r.State == "" {
		r.State = cluster.ReplicaUp
	}
	d.m.mu.Lock()
	d.m.repls[r.ID] = r
	d.m.mu.Unlock()
}

func (d *memDir) Remove(id string) {
	d.m.mu.Lock()
	delete(d.m.repls, id)
	d.m.mu.Unlock()
}

func (d *memDir) Get(id string) (cluster.Replica, bool) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	r, ok := d.m.repls[id]
	return d.m.effective(r), ok
}

func (d *memDir) Live(addr string) []string {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	var out []string
	for id, r := range d.m.repls {
		if slices.Contains(r.Pools, addr) && d.m.effective(r).State == cluster.ReplicaUp {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (d *memDir) All() []cluster.Replica {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	var out []cluster.Replica
	for id, r := range d.m.repls {
		r = d.m.effective(r)
		r.ID = id
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// startClustered starts sentinel id as a member of m.
func startClustered(t *testing.T, m *memCluster, id string) *testSentinel {
	t.Helper()
	return startClusteredGrace(t, m, id, 0)
}

// startClusteredGrace is startClustered with the grace window (0: the default).
func startClusteredGrace(t *testing.T, m *memCluster, id string, grace time.Duration) *testSentinel {
	t.Helper()
	tbl, err := stickiness.NewTable(stickiness.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return startSentinel(t, map[string]string{"FAME_NODE_ID": id}, WithCluster(ClusterLink{Store: cluster.NewLocalStore(tbl, id),
		Bus: &memBus{m, id}, Directory: &memDir{m, id}, Grace: grace}))
}

// TestClusterForwardOneHop: a call on s0 to a pool whose only replica is on s1 crosses the bus
// once, with the replica named; the reply comes back by the client's path prefix; nothing is
// published twice.
func TestClusterForwardOneHop(t *testing.T) {
	m := newMemCluster()
	s0, s1 := startClustered(t, m, "s0"), startClustered(t, m, "s1")
	rep := dialRaw(t, s1, "rep")
	rep.attach("*.fame.fabric")
	if ack := rep.bind("math@*.fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}
	cli := dialRaw(t, s0, "cli")
	cli.attach()
	req := cli.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"whoami"}`)
	got := rep.recv()
	if got.ID != req.ID || got.To != "math@fame.fabric" {
		t.Fatalf("replica got %s to %s, want the request %s", got.ID, got.To, req.ID)
	}
	rep.sendFrame(&envelope.Data{Payload: []byte(`{"jsonrpc":"2.0","id":"1","result":"rep"}`)}, func(e *envelope.Envelope) {
		e.To, e.CorrID = req.ReplyTo, req.CorrID
	})
	reply := cli.recv()
	if reply.CorrID != req.CorrID {
		t.Fatalf("client got %s, want the reply to %s", reply.Frame, req.CorrID)
	}
	msgs := m.published()
	if len(msgs) != 2 || msgs[0].from != "s0" || msgs[0].to != "s1" || msgs[1].from != "s1" || msgs[1].to != "s0" {
		t.Fatalf("bus traffic %+v, want s0->s1 and s1->s0 once each", msgs)
	}
	if string(msgs[0].data[:4]) != "rep\n" || msgs[1].data[0] != '\n' {
		t.Fatalf("target lines %q, %q: want the replica named on the call, none on the reply",
			msgs[0].data[:4], msgs[1].data[:1])
	}
	if n := counterValue(t, s0.cl.m.routed.WithLabelValues("remote")); n != 1 {
		t.Fatalf("s0 remote routes %v, want 1", n)
	}
}

// TestClusterNeverReforwards: what a peer forwards for a path that is not under this
// sentinel, or for a replica not attached here, is refused (counted, nacked back to the
// caller's sentinel), never published onwards.
func TestClusterNeverReforwards(t *testing.T) {
	m := newMemCluster()
	s0 := startClustered(t, m, "s0")
	_ = startClustered(t, m, "s1")
	s2 := startClustered(t, m, "s2")
	deliver := func(target string, e *envelope.Envelope) {
		b, err := e.AppendMarshal([]byte(target + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := (&memBus{m, "s1"}).Publish("s0", b); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := envelope.New(&envelope.Data{Payload: []byte(`{}`)})
	e.To, e.ReplyTo, e.CorrID, e.RType = "x@/s2/victim", "__rpc__a@/s1/caller", "c1", envelope.RTypeReply
	deliver("", e)
	waitClustered(t, "the not_local refusal", func() bool {
		return counterValue(t, s0.cl.m.busRefusals.WithLabelValues(busRefusedNotLocal)) == 1
	})
	e2, _ := envelope.New(&envelope.Data{Payload: []byte(`{}`)})
	e2.To, e2.ReplyTo, e2.CorrID, e2.RType = "math@fame.fabric", "__rpc__a@/s1/caller", "c2", envelope.RTypeReply
	deliver("ghost", e2)
	waitClustered(t, "the not_attached refusal", func() bool {
		return counterValue(t, s0.cl.m.busRefusals.WithLabelValues(busRefusedNotAttached)) == 1
	})
	time.Sleep(50 * time.Millisecond)
	for _, msg := range m.published() {
		if msg.from == "s0" && msg.to != "s1" {
			t.Fatalf("s0 published to %s: a forwarded envelope went onwards", msg.to)
		}
	}
	var codes []string
	for _, msg := range m.published() {
		if msg.from == "s0" {
			var h envelope.Header
			if err := envelope.ParseHeader(msg.data[1:], &h); err != nil {
				t.Fatal(err)
			}
			env, _ := envelope.Decode(msg.data[1:])
			f, _ := env.DecodeFrame()
			if ack, ok := f.(*envelope.DeliveryAck); ok && !ack.OK {
				codes = append(codes, ack.Code)
			}
		}
	}
	slices.Sort(codes)
	if !slices.Equal(codes, []string{envelope.CodeChildUnreachable, envelope.CodeNoRoute}) {
		t.Fatalf("nacks sent back to s1: %v, want CHILD_UNREACHABLE and NO_ROUTE", codes)
	}
	if n := counterValue(t, s2.cl.m.busRefusals.WithLabelValues(busRefusedNotLocal)); n != 0 {
		t.Fatalf("s2 saw the envelope: %v", n)
	}
}

func waitClustered(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *memBus) SetDraining(bool) {}

func (d *memDir) Serving(addr string) []cluster.Replica {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	var out []cluster.Replica
	for id, r := range d.m.repls {
		if slices.Contains(r.Pools, addr) {
			r = d.m.effective(r)
			r.ID = id
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
