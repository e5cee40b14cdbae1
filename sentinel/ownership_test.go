package sentinel

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/security/aft"
)

func refusalCount(t *testing.T, ts *testSentinel, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := ts.metrics.refusals.WithLabelValues(reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// dialSilent attaches id and then stops reading, like a process that hung or whose host
// vanished: its socket stays open but it never answers a ping again.
func dialSilent(t *testing.T, ts *testSentinel, id string, logicals ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ts.url+"/fame/v1/attach/ws/downstream/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	e, _ := envelope.New(&envelope.NodeAttach{OriginType: "downstream", SystemID: id, InstanceID: envelope.NewID(), AcceptedLogicals: logicals})
	e.TraceID, e.CorrID, e.FlowID = envelope.NewID(), envelope.NewID(), envelope.NewID()
	b, _ := e.Marshal()
	if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		t.Fatal(err)
	}
	// Read until the ack, then never again. A read whose context expires would close the
	// connection, so the reads use the background context.
	for {
		_, msg, err := ws.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, err := envelope.Decode(msg)
		if err == nil && got.FrameType() == envelope.TypeNodeAttachAck {
			return ws
		}
	}
}

// attachRefused sends NodeAttach for p and returns the negative ack; the socket must then close
// with 1008 and a reason naming the code.
func attachRefused(t *testing.T, p *rawPeer, na *envelope.NodeAttach, mod func(*envelope.Envelope)) *envelope.NodeAttachAck {
	t.Helper()
	if na == nil {
		na = &envelope.NodeAttach{OriginType: "downstream", SystemID: p.id, InstanceID: envelope.NewID(), AcceptedLogicals: []string{"fame.fabric"}}
	}
	p.sendFrame(na, mod)
	ack := decodeAs[*envelope.NodeAttachAck](t, p.recv())
	if ack.OK {
		t.Fatalf("attach of %s accepted", na.SystemID)
	}
	p.expectClosed(t, websocket.StatusPolicyViolation, ack.Code)
	return ack
}

func TestValidSystemID(t *testing.T) {
	for _, id := range []string{"a/b", "a\\b", "a%2Fb", "..", ".", "a b", "a\x00", "x@y", strings.Repeat("a", 300),
		"a*b", "a:b", "a?b", "a#b", "a\tb", "a\u200bb", "a\u202eb", "\ufeffa", "é"} {
		if validSystemID(id) == nil {
			t.Errorf("%q accepted", id)
		}
	}
	// Ids the reference SDKs generate (captured: TS base62, 16 characters) and operator names.
	for _, id := range []string{"replica1", "math-agent_2", "7NdVPHnEn3hFjbn", "a.b", "S5uEIpEPI0tfKqo4", "WTps2sKZfgi0a5kw",
		"math-replica1", "Cb8WVCC4ML5RsFM", strings.Repeat("a", 128)} {
		if err := validSystemID(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
}

// TestSystemIDWithSeparatorRefused: an id that unescapes to a path (…/a%2Fb) never attaches.
func TestSystemIDWithSeparatorRefused(t *testing.T) {
	ts := startSentinel(t, nil)
	p := dialRaw(t, ts, "victim%2Fchild")
	ack := attachRefused(t, p, &envelope.NodeAttach{OriginType: "downstream", SystemID: "victim/child", InstanceID: "i"}, nil)
	if ack.Code != codeInvalidSystemID {
		t.Fatalf("code %q", ack.Code)
	}
	if refusalCount(t, ts, refusalSystemIDInvalid) != 1 {
		t.Fatal("refusal not counted")
	}
}

// TestSystemIDTakeoverRefused: a second attach for a live id is refused while the holder
// answers pings; the holder keeps its route.
func TestSystemIDTakeoverRefused(t *testing.T) {
	ts := startSentinel(t, nil)
	a1 := dialRaw(t, ts, "agent")
	a1.attach("fame.fabric")
	a1.bind("math@fame.fabric")
	m := dialRaw(t, ts, "agent")
	if ack := attachRefused(t, m, nil, nil); ack.Code != codeSystemIDInUse {
		t.Fatalf("code %q", ack.Code)
	}
	if refusalCount(t, ts, refusalSystemIDInUse) != 1 {
		t.Fatal("refusal not counted")
	}
	if !strings.Contains(ts.logs.String(), "security refusal") {
		t.Fatal("no log line")
	}
	client := dialRaw(t, ts, "client")
	client.attach("*")
	req := client.call("math@fame.fabric", `{}`)
	if e := a1.recv(); e.ID != req.ID {
		t.Fatal("holder lost its route")
	}
}

// TestReattachReplacesRoute: a node whose old connection is silent (crashed, half-open socket)
// gets its id back once the old connection fails the liveness probe; the old routes go.
func TestReattachReplacesRoute(t *testing.T) {
	ts := startSentinel(t, nil)
	dialSilent(t, ts, "agent", "fame.fabric")
	old := ts.routes.child([]byte("agent"))
	if old == nil {
		t.Fatal("silent node not attached")
	}
	ts.routes.bind(old, envelope.Address{Participant: "math", Host: "fame.fabric"})
	start := time.Now()
	a2 := dialRaw(t, ts, "agent")
	a2.attach("fame.fabric")
	t.Logf("take-over after %v", time.Since(start))
	if !old.closed() {
		t.Fatal("silent holder not evicted")
	}
	if ts.routes.lookupExact([]byte("math@fame.fabric")) != nil {
		t.Fatal("old connection's route survived the re-attach")
	}
	if ack := a2.bind("math@fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}
	client := dialRaw(t, ts, "client")
	client.attach("*")
	req := client.call("math@fame.fabric", `{}`)
	if e := a2.recv(); e.ID != req.ID {
		t.Fatal("new connection did not get the request")
	}
}

// TestOverlayOwnerReattachSigned: in overlay the same process (same signing key) re-attaching
// while its old connection still looks alive proves ownership with a signed NodeAttach.
func TestOverlayOwnerReattachSigned(t *testing.T) {
	ts, agent, _, _ := overlayPair(t)
	again := newSigningPeer(t, ts, "agent1")
	again.signer = agent.signer
	again.path = agent.path
	e := again.newEnv(&envelope.NodeAttach{OriginType: "downstream", SystemID: "agent1", InstanceID: envelope.NewID(),
		AcceptedLogicals: []string{"fame.fabric"}, Keys: again.jwks()})
	again.sendSigned(e, nil)
	if ack := decodeAs[*envelope.NodeAttachAck](t, again.recv()); !ack.OK {
		t.Fatalf("owner's signed re-attach refused: %+v", ack)
	}
	agent.expectClosed(t, websocket.StatusNormalClosure, "replaced")

	// Signed by another key: no proof, and the holder is alive.
	m := newSigningPeer(t, ts, "agent1")
	m.path = agent.path
	e = m.newEnv(&envelope.NodeAttach{OriginType: "downstream", SystemID: "agent1", InstanceID: envelope.NewID(),
		AcceptedLogicals: []string{"fame.fabric"}, Keys: m.jwks()})
	m.sendSigned(e, nil)
	if ack := decodeAs[*envelope.NodeAttachAck](t, m.recv()); ack.OK || ack.Code != codeSystemIDInUse {
		t.Fatalf("take-over with a foreign key: %+v", ack)
	}
}

// TestBindOwnership: an exact bind inside a live pool of others, and a second exact binder,
// are refused with BIND_CONFLICT; re-binding one's own address is fine.
func TestBindOwnership(t *testing.T) {
	ts := startSentinel(t, nil)
	r1 := dialRaw(t, ts, "r1")
	r1.attach("*.fame.fabric")
	if ack := r1.bind("math@*.fame.fabric"); !ack.OK {
		t.Fatalf("pool bind: %+v", ack)
	}
	m := dialRaw(t, ts, "mallory")
	m.attach("*.fame.fabric")
	for _, addr := range []string{"math@fame.fabric", "math@eu.fame.fabric"} {
		if ack := m.bind(addr); ack.OK || ack.Code != codeBindConflict {
			t.Fatalf("shadowing bind %s: %+v", addr, ack)
		}
	}
	// The pool's own member may bind an exact address in it (it owns the pool alone).
	if ack := r1.bind("math@fame.fabric"); !ack.OK {
		t.Fatalf("member's exact bind: %+v", ack)
	}
	e1 := dialRaw(t, ts, "e1")
	e1.attach("fame.fabric")
	if ack := e1.bind("echo@fame.fabric"); !ack.OK {
		t.Fatalf("first exact bind: %+v", ack)
	}
	if ack := e1.bind("echo@fame.fabric"); !ack.OK {
		t.Fatalf("re-bind of own address: %+v", ack)
	}
	e2 := dialRaw(t, ts, "e2")
	e2.attach("fame.fabric")
	if ack := e2.bind("echo@fame.fabric"); ack.OK || ack.Code != codeBindConflict {
		t.Fatalf("second exact binder: %+v", ack)
	}
	if n := refusalCount(t, ts, refusalBindConflict); n != 3 {
		t.Fatalf("bind_conflict counted %v times, want 3", n)
	}
	client := dialRaw(t, ts, "client")
	client.attach("*")
	req := client.call("echo@fame.fabric", `{}`)
	if e := e1.recv(); e.ID != req.ID {
		t.Fatal("first binder lost its address")
	}
	req = client.call("math@eu.fame.fabric", `{}`)
	if e := r1.recv(); e.ID != req.ID {
		t.Fatal("pool lost its traffic")
	}
	// Once the owner is gone the address is free again.
	_ = e1.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { return ts.routes.lookupExact([]byte("echo@fame.fabric")) == nil })
	if ack := e2.bind("echo@fame.fabric"); !ack.OK {
		t.Fatalf("bind after owner left: %+v", ack)
	}
}

// TestForeignKeyRefused: in overlay an envelope validly signed by another node's key (a
// replayed or relayed one) is refused on the connection that sent it.
func TestForeignKeyRefused(t *testing.T) {
	ts, agent, client, _ := overlayPair(t)
	m := newSigningPeer(t, ts, "mallory")
	m.attachSigned("*")
	// mallory holds a signature made with client1's key over an envelope with its own
	// reply address (the test plays the stolen signature by signing with client1's signer).
	req := m.request("math@fame.fabric", `{"x":1}`)
	req.SID = envelope.SecureDigest(client.path)
	m.sendSigned(req, client.signer)
	da := decodeAs[*envelope.DeliveryAck](t, m.recv())
	if da.OK || da.Code != codeForeignKey {
		t.Fatalf("nack %+v", da)
	}
	if refusalCount(t, ts, refusalForeignKey) != 1 {
		t.Fatal("refusal not counted")
	}
	expectNothing(t, agent.rawPeer, 200*time.Millisecond)
	// The victim's own signed requests still go through.
	client.sendSigned(client.request("math@fame.fabric", `{}`), nil)
	if e := agent.recv(); e.FrameType() != envelope.TypeData {
		t.Fatalf("agent got %s", e.Frame)
	}
}

// TestAFTUnroutedSessionNotPinned: a replica cannot pre-claim a session that nothing was ever
// routed for, even with a valid token of its own.
func TestAFTUnroutedSessionNotPinned(t *testing.T) {
	ts := startSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_STICKINESS_LEVEL": "strict"})
	r := newSigningPeer(t, ts, "r1")
	r.attachSigned("*.fame.fabric")
	if _, ack := r.bindSigned("math@*.fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}
	client := newSigningPeer(t, ts, "client")
	client.attachSigned("*")
	clientSID := envelope.SecureDigest(client.path)
	tok, err := aft.Sign(r.signer.Key, r.signer.Kid, envelope.SecureDigest(r.path), clientSID, "node", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sendAccept(t, r, client, "never-opened", tok)
	waitFor(t, func() bool { return refusalCount(t, ts, refusalAFTUnroutedSession) == 1 })
	if _, ok := ts.sticky.table.Lookup(clientSID); ok {
		t.Fatal("unrouted session pinned")
	}
}

func TestLivenessProbeCountsAnyFrame(t *testing.T) {
	ts := startSentinel(t, nil)
	holder := dialSilent(t, ts, "agent", "fame.fabric")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			e, _ := envelope.New(&envelope.NodeHeartbeat{})
			e.TraceID, e.CorrID, e.FlowID = envelope.NewID(), envelope.NewID(), envelope.NewID()
			b, _ := e.Marshal()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := holder.Write(ctx, websocket.MessageBinary, b)
			cancel()
			if err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	m := dialRaw(t, ts, "agent")
	ack := attachRefused(t, m, nil, nil)
	if ack.Code != codeSystemIDInUse {
		t.Fatalf("code %q", ack.Code)
	}
	if strings.Contains(ack.Reason, "127.0.0.1") {
		t.Fatalf("reason leaks the holder's address: %q", ack.Reason)
	}
	if refusalCount(t, ts, refusalSystemIDInUse) != 1 {
		t.Fatal("refusal not counted")
	}
}

// TestConcurrentClaimsWaitInsteadOfRefusing: while one claim for a dead holder's id is being
// probed, a second claim (the real node reconnecting) waits for the decision instead of being
// refused. The first claim takes the id (the holder is dead); the second then finds a live
// holder that answers and is refused — but never with "being decided".
func TestConcurrentClaimsWaitInsteadOfRefusing(t *testing.T) {
	ts := startSentinel(t, nil)
	dialSilent(t, ts, "agent", "fame.fabric")
	first := dialRaw(t, ts, "agent")
	second := dialRaw(t, ts, "agent")
	first.sendFrame(&envelope.NodeAttach{OriginType: "downstream", SystemID: "agent", InstanceID: envelope.NewID(), AcceptedLogicals: []string{"fame.fabric"}}, nil)
	time.Sleep(100 * time.Millisecond) // the first claim's probe is running (it lasts ownerProbeTimeout)
	second.sendFrame(&envelope.NodeAttach{OriginType: "downstream", SystemID: "agent", InstanceID: envelope.NewID(), AcceptedLogicals: []string{"fame.fabric"}}, nil)
	if ack := decodeAs[*envelope.NodeAttachAck](t, first.recv()); !ack.OK {
		t.Fatalf("first claim against a dead holder: %+v", ack)
	}
	ack := decodeAs[*envelope.NodeAttachAck](t, second.recv())
	if ack.OK || ack.Code != codeSystemIDInUse || strings.Contains(ack.Reason, "being decided") {
		t.Fatalf("second claim: %+v", ack)
	}
}
