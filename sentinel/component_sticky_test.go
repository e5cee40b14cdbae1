package sentinel

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fame-go/fame/balancer"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
)

// The sticky router with fake peers: pinning, channel stickiness, re-pin when a replica is
// gone, SecureClose to the client, and the channel-takeover refusal. No sockets, no Sentinel.

type stickyFixture struct {
	r       *stickyRouter
	routes  *routeTable
	refuse  *fakeRefuser
	sign    *countingSigner
	metrics *metrics
	client  *fakePeer
	reps    []*fakePeer
}

func newStickyFixture(t *testing.T, env map[string]string, replicas int) *stickyFixture {
	t.Helper()
	opts, err := LoadOptions("", config.Getenv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := balancer.New(string(opts.LoadBalancing))
	if err != nil {
		t.Fatal(err)
	}
	f := &stickyFixture{routes: newRouteTable(), refuse: &fakeRefuser{}, sign: &countingSigner{},
		metrics: newMetrics(metricSources{})}
	f.r, err = newStickyRouter(stickyDeps{opts: opts, log: discardLog, metrics: f.metrics, lb: lb,
		routes: f.routes, sec: (*secLayer)(nil), sign: f.sign, refuse: f.refuse, sid: envelope.SecureDigest("/s")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.r.close)
	f.client = newFakePeer("/s", "client")
	f.routes.attach(f.client)
	for i := 0; i < replicas; i++ {
		p := newFakePeer("/s", fmt.Sprintf("r%d", i))
		f.routes.attach(p)
		f.routes.bind(p, mustAddr(t, "math@*.fame.fabric"))
		f.reps = append(f.reps, p)
	}
	return f
}

// pick routes one request of the client's session sid (a fresh envelope id each time).
func (f *stickyFixture) pick(t *testing.T, sid string, mod func(*envelope.Header)) peer {
	t.Helper()
	p, members := f.routes.lookupPool([]byte("math"), []byte("fame.fabric"))
	if p == nil {
		t.Fatal("no pool")
	}
	h := &envelope.Header{ID: []byte(envelope.NewID()), SID: []byte(sid), FrameType: []byte(envelope.TypeData)}
	if mod != nil {
		mod(h)
	}
	return f.r.pick(f.client, p, members, h)
}

func TestStickyPinsSessions(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		replicas int
		sticky   bool // every request of a session reaches the same replica
	}{
		{"one replica", nil, 1, true},
		{"pool, stickiness on", nil, 3, true},
		{"pool, stickiness off", map[string]string{"FAME_STICKINESS": "off"}, 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newStickyFixture(t, tc.env, tc.replicas)
			seen := map[string]bool{}
			for i := 0; i < 60; i++ {
				seen[f.pick(t, f.client.sid, nil).ident().systemID] = true
			}
			if tc.sticky && len(seen) != 1 {
				t.Fatalf("one session reached %d replicas: %v", len(seen), seen)
			}
			if !tc.sticky && len(seen) < 2 {
				t.Fatalf("without stickiness, 60 requests all reached %v", seen)
			}
		})
	}
}

// TestStickySpreadsSessions: new sessions are placed by the balancer, not all on one replica,
// and each replica's session count says so.
func TestStickySpreadsSessions(t *testing.T) {
	f := newStickyFixture(t, nil, 3)
	placed := map[string]int{}
	for i := 0; i < 90; i++ {
		placed[f.pick(t, envelope.SecureDigest(fmt.Sprintf("/s/c%d", i)), nil).ident().systemID]++
	}
	if len(placed) != 3 {
		t.Fatalf("90 sessions placed on %v", placed)
	}
	for _, r := range f.reps {
		if got := f.r.sessionsOn(r); got != placed[r.systemID] {
			t.Errorf("sessionsOn(%s) = %d, placed %d", r.systemID, got, placed[r.systemID])
		}
	}
}

// TestStickyChannelWins: an envelope encrypted for a channel goes to the replica the channel
// was opened towards, even from another session.
func TestStickyChannelWins(t *testing.T) {
	f := newStickyFixture(t, nil, 3)
	open := f.pick(t, f.client.sid, func(h *envelope.Header) {
		h.FrameType, h.FrameCID = []byte(envelope.TypeSecureOpen), []byte("chan-1")
	})
	for i := 0; i < 20; i++ {
		other := envelope.SecureDigest(fmt.Sprintf("/s/other%d", i))
		if got := f.pick(t, other, func(h *envelope.Header) { h.EncKID = []byte("chan-1") }); got != open {
			t.Fatalf("channel data went to %s, the channel is on %s", got.ident().systemID, open.ident().systemID)
		}
	}
}

// TestStickyReplicaGone: losing a replica purges its sessions and channels, tells the client
// to re-open each channel (SecureClose, signed), refuses a request still encrypted for a lost
// channel (channelClosed), and the session is re-pinned to a live replica.
func TestStickyReplicaGone(t *testing.T) {
	f := newStickyFixture(t, nil, 3)
	first := f.pick(t, f.client.sid, func(h *envelope.Header) {
		h.FrameType, h.FrameCID = []byte(envelope.TypeSecureOpen), []byte("chan-1")
	})
	if got := f.pick(t, f.client.sid, nil); got != first {
		t.Fatalf("session not pinned: %s then %s", first.ident().systemID, got.ident().systemID)
	}
	f.client.take() // nothing so far, but start clean

	f.routes.detach(first) // what connClosed does before replicaGone
	f.r.replicaGone(first)

	frames := f.client.frames(t)
	if len(frames) != 1 {
		t.Fatalf("client got %d frames, want one SecureClose", len(frames))
	}
	sc, ok := frames[0].(*envelope.SecureClose)
	if !ok || sc.CID != "chan-1" {
		t.Fatalf("client got %#v, want SecureClose{cid: chan-1}", frames[0])
	}
	if f.sign.n.Load() != 1 {
		t.Errorf("SecureClose signed %d times, want 1", f.sign.n.Load())
	}
	if got := counterValue(t, f.metrics.repins); got != 1 {
		t.Errorf("repins = %v, want 1", got)
	}
	if got := counterValue(t, f.metrics.secureCloses); got != 1 {
		t.Errorf("secure closes = %v, want 1", got)
	}
	if !f.r.channelClosed(&envelope.Header{EncKID: []byte("chan-1")}) {
		t.Error("a request encrypted for the lost channel is not refused")
	}
	if f.r.channelClosed(&envelope.Header{EncKID: []byte("chan-2")}) {
		t.Error("an unknown channel counts as closed")
	}

	again := f.pick(t, f.client.sid, nil)
	if again == first || again == nil {
		t.Fatalf("session re-pinned to %v", again)
	}
	for i := 0; i < 10; i++ {
		if got := f.pick(t, f.client.sid, nil); got != again {
			t.Fatalf("re-pinned session moved on: %s then %s", again.ident().systemID, got.ident().systemID)
		}
	}
	if f.r.sessionsOn(first) != 0 {
		t.Errorf("the lost replica still holds %d sessions", f.r.sessionsOn(first))
	}
	// A client that is gone as well gets nothing, and nothing fails.
	f.routes.detach(f.client)
	f.r.replicaGone(again)
	if got := f.client.take(); len(got) != 0 {
		t.Errorf("a detached client was sent %d envelopes", len(got))
	}
}

// TestStickyChannelTakeover: a SecureAccept from a replica for a channel opened towards
// another is refused (counted, nacked to the sender's __sys__) and not forwarded; the channel's
// own replica's accept goes through.
func TestStickyChannelTakeover(t *testing.T) {
	f := newStickyFixture(t, nil, 3)
	owner := f.pick(t, f.client.sid, func(h *envelope.Header) {
		h.FrameType, h.FrameCID = []byte(envelope.TypeSecureOpen), []byte("chan-1")
	})
	var thief peer
	for _, r := range f.reps {
		if peer(r) != owner {
			thief = r
			break
		}
	}
	accept := func() *envelope.Header {
		return &envelope.Header{ID: []byte(envelope.NewID()), FrameType: []byte(envelope.TypeSecureAccept),
			FrameCID: []byte("chan-1"), To: []byte("__sys__@" + f.client.path)}
	}
	cases := []struct {
		name    string
		from    peer
		forward bool
		want    []refusal
	}{
		{"another replica", thief, false, []refusal{
			{kind: "security", peer: thief.ident().systemID, reason: refusalChannelTakeover},
			{kind: "sys", peer: thief.ident().systemID, reason: codeChannelTakeover},
		}},
		{"the channel's replica", owner, true, nil},
	}
	for _, tc := range cases {
		if got := f.r.learn(tc.from, accept()); got != tc.forward {
			t.Errorf("%s: learn = %v, want %v", tc.name, got, tc.forward)
		}
		got := f.refuse.take()
		for i := range got {
			got[i].detail = ""
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: refusals %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// counterValue reads a counter without a registry.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestStickyRestoreGrace: after a restart with restored bindings, a call whose binding names a
// replica that has not re-attached yet is held back (pickWhy says wait: the router nacks it
// PEER_UNREACHABLE, retryable) rather than re-balanced, which would move the session for good
// and send its channel to a replica that cannot read it; other sessions are served; once the
// replica is back it gets its session, and after the grace a missing replica's session is
// re-balanced as before.
func TestStickyRestoreGrace(t *testing.T) {
	f := newStickyFixture(t, nil, 2)
	p, members := f.routes.lookupPool([]byte("math"), []byte("fame.fabric"))
	pickWhy := func(sid string, mod func(*envelope.Header)) (peer, bool) {
		h := &envelope.Header{ID: []byte(envelope.NewID()), SID: []byte(sid), FrameType: []byte(envelope.TypeData)}
		if mod != nil {
			mod(h)
		}
		c, _, wait := f.r.pickWhy(f.client, p, members, h)
		return c, wait
	}
	// As restored from the store: this session and its channel live on "r9", not attached yet.
	f.r.table.Bind("sid-restored", "r9", 0)
	f.r.table.BindChannel("chan-restored", "sid-restored", "r9")
	f.r.restoredUntil.Store(time.Now().Add(time.Hour).UnixNano())

	if c, wait := pickWhy("sid-restored", nil); c != nil || !wait {
		t.Fatalf("restored session whose replica is away: picked %v, wait %v; want held back", c, wait)
	}
	if c, wait := pickWhy("sid-other", func(h *envelope.Header) { h.EncKID = []byte("chan-restored") }); c != nil || !wait {
		t.Fatalf("request sealed for a restored channel: picked %v, wait %v; want held back", c, wait)
	}
	if c, wait := pickWhy("sid-fresh", nil); c == nil || wait {
		t.Fatalf("a session without a binding: picked %v, wait %v; want served", c, wait)
	}
	if id, _ := f.r.table.Lookup("sid-restored"); id != "r9" {
		t.Fatalf("the restored binding moved to %q while its replica re-attaches", id)
	}

	back := newFakePeer("/s", "r9")
	f.routes.attach(back)
	f.routes.bind(back, mustAddr(t, "math@*.fame.fabric"))
	p, members = f.routes.lookupPool([]byte("math"), []byte("fame.fabric"))
	if c, wait := pickWhy("sid-restored", nil); c != peer(back) || wait {
		t.Fatalf("after the replica re-attached: picked %v, wait %v; want r9", c, wait)
	}

	f.r.table.Bind("sid-gone", "r8", 0)
	f.r.restoredUntil.Store(time.Now().Add(-time.Second).UnixNano()) // the grace is over
	if c, wait := pickWhy("sid-gone", nil); c == nil || wait {
		t.Fatalf("after the grace: picked %v, wait %v; want re-balanced", c, wait)
	}
	if f.r.restoredUntil.Load() != 0 {
		t.Fatal("the grace is over but still checked")
	}
}
