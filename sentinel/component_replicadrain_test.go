package sentinel

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// The replica drain with fake peers: no new pins, idle sessions moved with a SecureClose per
// channel, busy sessions kept until idle, channels still routed to the draining replica, the
// end after the linger, the last replica of a pool, and the replica leaving mid-drain.

// pendingFake is a replica with requests in flight from the client sids in busy.
type pendingFake struct {
	*fakePeer
	busy map[string]bool
}

func (p *pendingFake) awaiting(_ time.Time, _ func(string) bool, sids map[string]bool) int {
	for sid := range p.busy {
		sids[sid] = true
	}
	return len(p.busy)
}

func secureCloses(t *testing.T, p *fakePeer) []string {
	t.Helper()
	var cids []string
	for _, fr := range p.frames(t) {
		if sc, ok := fr.(*envelope.SecureClose); ok {
			cids = append(cids, sc.CID)
		}
	}
	return cids
}

func TestReplicaDrainMovesIdleSession(t *testing.T) {
	f := newStickyFixture(t, nil, 2)
	f.r.drains.manual = true
	sid := f.client.sid
	pinned := f.pick(t, sid, nil)
	other := f.reps[0]
	if pinned == peer(f.reps[0]) {
		other = f.reps[1]
	}
	const cid = "chan-1"
	f.r.table.BindChannel(cid, sid, pinned.ident().systemID)
	f.client.take()

	st, started := f.r.startReplicaDrain(pinned, "admin")
	if !started || st.State != envelope.DrainStateDraining || st.PinnedSessions != 1 || len(st.LastOfPools) != 0 {
		t.Fatalf("start: %+v started=%v", st, started)
	}
	if _, again := f.r.startReplicaDrain(pinned, "admin"); again {
		t.Fatal("a second start of the same drain reported started")
	}
	// A request on the old channel still reaches the draining replica (only it can read it).
	if got := f.pick(t, sid, func(h *envelope.Header) { h.EncKID = []byte(cid) }); got != pinned {
		t.Fatalf("request on the draining replica's channel went to %s", got.ident().systemID)
	}
	// The session's next plain request: idle, so it moves; the client is told to re-open.
	if got := f.pick(t, sid, nil); got != peer(other) {
		t.Fatalf("idle session still routed to the draining replica")
	}
	if cids := secureCloses(t, f.client); len(cids) != 1 || cids[0] != cid {
		t.Fatalf("SecureCloses to the client: %v, want [%s]", cids, cid)
	}
	if f.r.sessionsOn(pinned) != 0 || f.r.sessionsOn(other) != 1 {
		t.Fatalf("sessions: draining %d, other %d; want 0 and 1", f.r.sessionsOn(pinned), f.r.sessionsOn(other))
	}
	// New sessions never land on the draining replica.
	for i := 0; i < 20; i++ {
		if got := f.pick(t, envelope.NewID(), nil); got == pinned {
			t.Fatal("a new session was pinned to the draining replica")
		}
	}
	// The end: after the linger, drained; the moved channel is closed and unbound.
	now := time.Now()
	f.r.drainStep(now)
	f.r.drainStep(now.Add(replicaDrainLinger))
	st, ok := f.r.replicaDrainStatus(pinned)
	if !ok || st.State != envelope.DrainStateDrained || st.Result != "idle" || st.Moved != 1 {
		t.Fatalf("status after the linger: %+v", st)
	}
	if _, bound := f.r.table.LookupChannel(cid); bound {
		t.Fatal("the moved channel is still bound after the drain")
	}
	if got := counterValue(t, f.r.drains.moved.WithLabelValues("idle")); got != 1 {
		t.Fatalf("moved{idle} = %v, want 1", got)
	}
	if got := counterValue(t, f.r.drains.finished.WithLabelValues("idle")); got != 1 {
		t.Fatalf("finished{idle} = %v, want 1", got)
	}
	if f.r.drains.active.Load() != 0 {
		t.Fatal("fame_replica_draining not back to 0")
	}
	f.r.replicaGone(pinned)
	if f.r.drains.on() {
		t.Fatal("drain state outlived the replica's connection")
	}
}

func TestReplicaDrainKeepsBusySession(t *testing.T) {
	f := newStickyFixture(t, nil, 0)
	f.r.drains.manual = true
	busy := &pendingFake{fakePeer: newFakePeer("/s", "busy"), busy: map[string]bool{}}
	idle := newFakePeer("/s", "idle")
	for _, p := range []peer{busy, idle} {
		f.routes.attach(p)
		f.routes.bind(p, mustAddr(t, "math@*.fame.fabric"))
	}
	sid := f.client.sid
	f.r.table.Bind(sid, "busy", 0)
	f.r.table.BindChannel("c1", sid, "busy")
	busy.busy[sid] = true
	f.r.startReplicaDrain(busy, "self")
	f.r.drainStep(time.Now())
	if got := f.pick(t, sid, nil); got != peer(busy) {
		t.Fatalf("a session with a call in flight was moved to %s", got.ident().systemID)
	}
	if cids := secureCloses(t, f.client); len(cids) != 0 {
		t.Fatalf("SecureClose sent while a call was in flight: %v", cids)
	}
	// A new channel of a busy session is not opened on the draining replica.
	f2 := newStickyFixture(t, nil, 0)
	f2.r.drains.manual = true
	b2 := &pendingFake{fakePeer: newFakePeer("/s", "busy"), busy: map[string]bool{sid: true}}
	i2 := newFakePeer("/s", "idle")
	for _, p := range []peer{b2, i2} {
		f2.routes.attach(p)
		f2.routes.bind(p, mustAddr(t, "math@*.fame.fabric"))
	}
	f2.r.table.Bind(sid, "busy", 0)
	f2.r.startReplicaDrain(b2, "self")
	open := func(h *envelope.Header) { h.FrameType, h.FrameCID = []byte(envelope.TypeSecureOpen), []byte("c-new") }
	if got := f2.pick(t, sid, open); got != peer(i2) {
		t.Fatalf("SecureOpen of a busy session routed to %s, want the replica that stays", got.ident().systemID)
	}
	if id, _ := f2.r.table.LookupChannel("c-new"); id != "idle" {
		t.Fatalf("new channel bound to %q, want idle", id)
	}
	// Its reply passes: idle now, moved at once.
	delete(busy.busy, sid)
	f.r.replyPassed(busy, &envelope.Header{To: []byte("__rpc__x@" + f.client.path), CorrID: []byte("c")})
	if cids := secureCloses(t, f.client); len(cids) != 1 || cids[0] != "c1" {
		t.Fatalf("SecureCloses after the last reply: %v, want [c1]", cids)
	}
	if got := f.pick(t, sid, nil); got != peer(idle) {
		t.Fatalf("moved session routed to %s, want idle", got.ident().systemID)
	}
	// Timeout: a session busy for ever is moved anyway.
	f.r.table.Bind("other-sid", "busy", 0)
	busy.busy["other-sid"] = true
	f.r.drainStep(time.Now().Add(time.Hour))
	st, _ := f.r.replicaDrainStatus(busy)
	if st.State != envelope.DrainStateDrained || st.Result != "timeout" || st.PinnedSessions != 0 {
		t.Fatalf("after the timeout: %+v", st)
	}
	if got := counterValue(t, f.r.drains.moved.WithLabelValues("timeout")); got != 1 {
		t.Fatalf("moved{timeout} = %v, want 1", got)
	}
}

func TestReplicaDrainLastOfPool(t *testing.T) {
	f := newStickyFixture(t, nil, 1)
	f.r.drains.manual = true
	only := f.reps[0]
	sid := f.client.sid
	f.pick(t, sid, nil)
	st, _ := f.r.startReplicaDrain(only, "admin")
	if len(st.LastOfPools) != 1 || st.LastOfPools[0] != "math@*.fame.fabric" {
		t.Fatalf("lastOfPools = %v", st.LastOfPools)
	}
	// It still serves its pool, but nothing is pinned to it any more.
	if got := f.pick(t, sid, nil); got != peer(only) {
		t.Fatal("the last replica of the pool does not serve it while draining")
	}
	if f.r.sessionsOn(only) != 0 {
		t.Fatalf("%d sessions pinned to the draining last replica", f.r.sessionsOn(only))
	}
	f.r.drainStep(time.Now())
	f.r.drainStep(time.Now().Add(replicaDrainLinger))
	if st, _ := f.r.replicaDrainStatus(only); st.State != envelope.DrainStateDrained {
		t.Fatalf("last replica: %+v, want drained", st)
	}
}

func TestReplicaDrainGoneMidway(t *testing.T) {
	f := newStickyFixture(t, nil, 2)
	f.r.drains.manual = true
	pinned := f.pick(t, f.client.sid, nil)
	f.r.startReplicaDrain(pinned, "self")
	f.r.replicaGone(pinned)
	if f.r.drains.on() || f.r.drains.active.Load() != 0 {
		t.Fatal("drain state left after the replica detached")
	}
	if got := counterValue(t, f.r.drains.finished.WithLabelValues("gone")); got != 1 {
		t.Fatalf("finished{gone} = %v, want 1", got)
	}
	if got := counterValue(t, f.r.drains.moved.WithLabelValues("replica_gone")); got != 1 {
		t.Fatalf("moved{replica_gone} = %v, want 1", got)
	}
}

// The admin endpoint: 403 without a configured token, 404 with a reason for an unknown or
// non-replica system id, 202 with the pinned-session count, 409 when already draining.
func TestReplicaDrainAdminEndpoint(t *testing.T) {
	s := fakeWiredSentinel(t, map[string]string{"FAME_ADMIN_TOKEN": "admin-token-0123456789"})
	rep := newFakePeer(s.path, "rep")
	s.routes.attach(rep)
	s.routes.bind(rep, mustAddr(t, "math@*.fame.fabric"))
	cl := newFakePeer(s.path, "cl")
	s.routes.attach(cl)
	h := s.Handler()
	post := func(id string) (int, string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/admin/replicas/"+id+"/drain", nil)
		r.Header.Set("Authorization", "Bearer admin-token-0123456789")
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, body := post("nobody"); code != http.StatusNotFound || !strings.Contains(body, "no node with system id nobody") {
		t.Fatalf("unknown: %d %q", code, body)
	}
	if code, body := post("cl"); code != http.StatusNotFound || !strings.Contains(body, "member of no pool") {
		t.Fatalf("not a replica: %d %q", code, body)
	}
	code, body := post("rep")
	if code != http.StatusAccepted {
		t.Fatalf("drain: %d %q", code, body)
	}
	var ans map[string]any
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	if ans["pinnedSessions"] != float64(0) || ans["draining"] != true || !strings.Contains(ans["warning"].(string), "pool will be empty") {
		t.Fatalf("answer: %v", ans)
	}
	if code, body := post("rep"); code != http.StatusConflict || !strings.Contains(body, "draining already") {
		t.Fatalf("again: %d %q", code, body)
	}
	for reason, want := range map[string]float64{"unknown_system_id": 1, "not_replica": 1, "already_draining": 1} {
		if got := counterValue(t, s.sticky.drains.refusals.WithLabelValues(reason)); got != want {
			t.Fatalf("refusals{%s} = %v, want %v", reason, got, want)
		}
	}

	open := fakeWiredSentinel(t, nil)
	w := httptest.NewRecorder()
	open.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/admin/replicas/rep/drain", nil))
	if w.Code != http.StatusForbidden {
		t.Fatalf("no admin token configured: %d, want 403", w.Code)
	}
}
