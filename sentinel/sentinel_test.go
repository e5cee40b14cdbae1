package sentinel

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

func asCloseError(err error, ce *websocket.CloseError) bool { return errors.As(err, ce) }

func TestAttachBindRoute(t *testing.T) {
	ts := startSentinel(t, nil)
	agent := dialRaw(t, ts, "agent1")
	ack := agent.attach("fame.fabric")
	if ack.AssignedPath != ts.PhysicalPath()+"/agent1" || ack.TargetSystemID != ts.ID() || ack.RoutingEpoch == "" ||
		ack.RefIDSnake != ack.RefID || ack.AssignedPathSnake != ack.AssignedPath {
		t.Fatalf("ack: %+v", ack)
	}
	if b := agent.bind("math@fame.fabric"); !b.OK || b.Address != "math@fame.fabric" {
		t.Fatalf("bind ack %+v", b)
	}
	client := dialRaw(t, ts, "client1")
	client.attach("*")
	req := client.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"add","params":{"x":3,"y":4}}`)
	got := agent.recv()
	if got.ID != req.ID || string(got.Frame) != string(req.Frame) || got.SID != req.SID || got.FlowID != req.FlowID {
		t.Fatalf("forwarded envelope changed: %+v", got)
	}
	if got.SeqID != 0 || got.FlowFlags != envelope.FlowSyn {
		t.Fatalf("first envelope of a flow must be re-stamped seq 0 SYN, got %d/%d", got.SeqID, got.FlowFlags)
	}
	// Reply by physical path to the client's __rpc__ inbox.
	agent.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","result":7}`)}, func(e *envelope.Envelope) {
		e.To, e.CorrID = req.ReplyTo, req.CorrID
	})
	reply := client.recv()
	if string(reply.Frame) != `{"type":"Data","payload":{"jsonrpc":"2.0","id":"1","result":7}}` || reply.CorrID != req.CorrID {
		t.Fatalf("reply: %s", reply.Frame)
	}
}

func TestNoRouteNack(t *testing.T) {
	ts := startSentinel(t, nil)
	client := dialRaw(t, ts, "client1")
	client.attach("*")
	req := client.call("nobody@fame.fabric", `{}`)
	nack := client.recv()
	f, _ := nack.DecodeFrame()
	da, ok := f.(*envelope.DeliveryAck)
	if !ok || da.OK || da.Code != envelope.CodeNoRoute || da.RefID != req.ID || da.Reason != "Unroutable to nobody@fame.fabric" {
		t.Fatalf("nack: %s", nack.Frame)
	}
	if nack.CorrID != req.CorrID || nack.TraceID != req.TraceID || nack.To != req.ReplyTo || nack.FlowFlags != envelope.FlowReset {
		t.Fatalf("nack envelope: %+v", nack)
	}
}

func TestPoolRoutingAndDetach(t *testing.T) {
	ts := startSentinel(t, map[string]string{"FAME_STICKINESS": "off", "FAME_LOAD_BALANCING": "round_robin"})
	var reps []*rawPeer
	for i := 0; i < 2; i++ {
		r := dialRaw(t, ts, fmt.Sprintf("rep%d", i))
		r.attach("*.fame.fabric")
		if b := r.bind("math@*.fame.fabric"); !b.OK {
			t.Fatalf("pool bind refused: %+v", b)
		}
		reps = append(reps, r)
	}
	client := dialRaw(t, ts, "client1")
	client.attach("*")
	seen := map[int]int{}
	for i := 0; i < 10; i++ {
		client.call("math@fame.fabric", `{}`)
		// Exactly one replica gets each request.
		for j, r := range reps {
			if e, err := r.read(300 * time.Millisecond); err == nil && e.FrameType() == envelope.TypeData {
				seen[j]++
			}
		}
	}
	if seen[0] != 5 || seen[1] != 5 {
		t.Fatalf("round robin over two replicas: %v", seen)
	}
	// Kill replica 0: its pool entry goes at once, every call lands on replica 1.
	_ = reps[0].ws.CloseNow()
	waitFor(t, func() bool { return len(ts.routes.snapshot().Pools["math@*.fame.fabric"]) == 1 })
	for i := 0; i < 4; i++ {
		req := client.call("math@fame.fabric", `{}`)
		if e := reps[1].recv(); e.ID != req.ID {
			t.Fatalf("survivor got %s", e.ID)
		}
	}
}

func TestInflightNackOnReplicaLoss(t *testing.T) {
	ts := startSentinel(t, nil)
	agent := dialRaw(t, ts, "agent1")
	agent.attach("fame.fabric")
	agent.bind("math@fame.fabric")
	client := dialRaw(t, ts, "client1")
	client.attach("*")
	req := client.call("math@fame.fabric", `{}`)
	agent.recv()
	_ = agent.ws.CloseNow()
	nack := client.recv()
	f, _ := nack.DecodeFrame()
	if da, ok := f.(*envelope.DeliveryAck); !ok || da.OK || da.Code != envelope.CodeRouteConnectorClosed || da.RefID != req.ID {
		t.Fatalf("want ROUTE_CONNECTOR_CLOSED nack, got %s", nack.Frame)
	}
}

func TestHeartbeatAndCredits(t *testing.T) {
	ts := startSentinel(t, nil)
	p := dialRaw(t, ts, "n1")
	p.attach("*")
	hb := p.sendFrame(&envelope.NodeHeartbeat{}, nil)
	var gotAck bool
	credits := 0
	for i := 0; i < 40; i++ {
		p.sendFrame(&envelope.DeliveryAck{Ack: envelope.Ack{OK: true}}, nil) // hop-local: consumed
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && (!gotAck || credits == 0) {
		e, err := p.read(time.Until(deadline))
		if err != nil {
			break
		}
		switch e.FrameType() {
		case envelope.TypeNodeHeartbeatAck:
			f, _ := e.DecodeFrame()
			a := f.(*envelope.NodeHeartbeatAck)
			gotAck = a.OK && a.RefID == hb.ID && e.CorrID == hb.CorrID && a.RoutingEpoch != ""
		case envelope.TypeCreditUpdate:
			f, _ := e.DecodeFrame()
			cu := f.(*envelope.CreditUpdate)
			if cu.FlowID != p.flow || cu.Credits != 32 || e.FlowFlags != envelope.FlowAck || e.SID != "" {
				t.Fatalf("credit update: %+v %s", e, e.Frame)
			}
			credits++
		}
	}
	if !gotAck || credits == 0 {
		t.Fatalf("heartbeat ack %v, credit updates %d", gotAck, credits)
	}
}

func TestBadInput(t *testing.T) {
	ts := startSentinel(t, nil)
	before := runtime.NumGoroutine()
	good := dialRaw(t, ts, "good")
	good.attach("fame.fabric")
	good.bind("math@fame.fabric")

	cases := []struct {
		name   string
		run    func(p *rawPeer)
		code   websocket.StatusCode
		reason string
	}{
		{"garbage before attach", func(p *rawPeer) { _ = p.sendRaw([]byte("\x00\x01garbage")) }, websocket.StatusPolicyViolation, "not an envelope"},
		{"frame before NodeAttach", func(p *rawPeer) {
			p.sendFrame(&envelope.Data{Payload: json.RawMessage(`1`)}, func(e *envelope.Envelope) { e.To = "math@fame.fabric" })
		}, websocket.StatusPolicyViolation, "expected NodeAttach"},
		{"system id mismatch", func(p *rawPeer) {
			p.sendFrame(&envelope.NodeAttach{SystemID: "other"}, nil)
		}, websocket.StatusPolicyViolation, "does not match"},
		{"garbage after attach", func(p *rawPeer) { p.attach("*"); _ = p.sendRaw([]byte("{not json")) }, websocket.StatusInvalidFramePayloadData, "malformed envelope"},
		{"10 MB message", func(p *rawPeer) {
			p.attach("*")
			_ = p.sendRaw([]byte(`{"frame":{"type":"Data","payload":"` + strings.Repeat("x", 10<<20) + `"}}`))
		}, websocket.StatusMessageTooBig, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := dialRaw(t, ts, fmt.Sprintf("bad%d", i))
			c.run(p)
			p.expectClosed(t, c.code, c.reason)
		})
	}
	t.Run("bind outside logicals", func(t *testing.T) {
		p := dialRaw(t, ts, "greedy")
		p.attach("fame.fabric")
		ack := p.bind("bank@evil.example")
		if ack.OK || ack.Code != envelope.CodeUnauthorized || !strings.Contains(ack.Reason, "outside") {
			t.Fatalf("bind outside logicals: %+v", ack)
		}
		if ts.routes.lookupExact([]byte("bank@evil.example")) != nil {
			t.Fatal("refused bind was recorded")
		}
	})
	t.Run("unknown frame type", func(t *testing.T) {
		p := dialRaw(t, ts, "future")
		p.attach("*")
		p.sendFrame(&envelope.UnknownFrame{Type: "FutureFrame", Raw: json.RawMessage(`{"type":"FutureFrame","x":1}`)},
			func(e *envelope.Envelope) { e.To = "math@fame.fabric" })
		if e := good.recv(); e.FrameType() != "FutureFrame" || string(e.Frame) != `{"type":"FutureFrame","x":1}` {
			t.Fatalf("unknown frame not forwarded intact: %s", e.Frame)
		}
	})
	// The good connection survived all of it.
	client := dialRaw(t, ts, "client")
	client.attach("*")
	req := client.call("math@fame.fabric", `{}`)
	if e := good.recv(); e.ID != req.ID {
		t.Fatal("good peer did not get the request")
	}
	for _, want := range []string{"not an envelope", "malformed envelope", "outside the logicals"} {
		if !strings.Contains(ts.logs.String(), want) {
			t.Errorf("log has no line about %q", want)
		}
	}
	// No goroutine leak once the bad peers are gone.
	for _, p := range []*rawPeer{good, client} {
		_ = p.ws.CloseNow()
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before+2 })
}

func TestRefusedUpgrades(t *testing.T) {
	ts := startSentinel(t, map[string]string{"FAME_NODE_ID": "sent1"})
	httpURL := "http" + strings.TrimPrefix(ts.url, "ws")
	for _, c := range []struct{ path, reason string }{
		{"/fame/v1/attach/ws/sideways/x", "Invalid origin type"},
		{"/fame/v1/attach/ws/downstream/sent1", "Self attachment not allowed"},
		{"/fame/v1/attach/ws/downstream", "Missing system id"},
	} {
		p := &rawPeer{t: t}
		ws, _, err := websocket.Dial(t.Context(), ts.url+c.path, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		p.ws = ws
		p.startReader()
		p.expectClosed(t, websocket.StatusPolicyViolation, c.reason)
	}
	resp, err := http.Get(httpURL + "/fame/v1/attach/ws/downstream/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("plain GET on attach route: %d", resp.StatusCode)
	}
	for _, p := range []string{"/fame/v1/attach/health", "/healthz", "/readyz", "/metrics", "/stats"} {
		resp, err := http.Get(httpURL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached within 5s")
}
