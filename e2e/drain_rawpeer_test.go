package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
)

const drainAdminToken = "drain-admin-token-0123456789"

// httpStatus returns the status of a request to the fabric (with the admin token when tok).
func httpStatus(t *testing.T, f *fabric, method, path, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+f.addr+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// expectAck waits for p's DeliveryAck of refID and returns it (other traffic is skipped).
func (p *rawPeer) expectAck(refID string) *envelope.DeliveryAck {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e, err := p.read(time.Until(deadline))
		if err != nil {
			p.t.Fatalf("%s: waiting for the ack of %s: %v", p.id, refID, err)
		}
		if e.FrameType() != envelope.TypeDeliveryAck {
			continue
		}
		fr, err := e.DecodeFrame()
		if err != nil {
			p.t.Fatal(err)
		}
		if ack := fr.(*envelope.DeliveryAck); ack.RefID == refID {
			return ack
		}
	}
	p.t.Fatalf("%s: no ack of %s", p.id, refID)
	return nil
}

// TestDrainRawPeers drives a drain started by POST /admin/drain with raw peers: a call in
// flight before the drain is answered; a new call after it is nacked DRAINING at once; an
// attach (a new upgrade, or a NodeAttach on a socket upgraded before the drain) is refused
// with 1013 and the reason; /readyz is 503 while /healthz stays 200; once the last reply is
// out every connection is closed with 1012 and a reason asking to re-attach.
func TestDrainRawPeers(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken})

	replica := dialRaw(t, f, "drain-replica", nil)
	replica.attach("fame.fabric")
	if ack := replica.bind(mathagent.Address); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}
	client := dialRaw(t, f, "drain-client", nil)
	client.attach()
	late := dialRaw(t, f, "drain-late", nil) // upgraded now, attaches during the drain

	first := client.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"add","params":{"x":1,"y":2}}`)
	req := replica.recv()
	if req.ID != first.ID {
		t.Fatalf("replica got %s (%s), want the call %s", req.ID, req.FrameType(), first.ID)
	}

	if got := httpStatus(t, f, http.MethodPost, "/admin/drain", ""); got != http.StatusUnauthorized {
		t.Fatalf("POST /admin/drain without the token: %d, want 401", got)
	}
	if got := httpStatus(t, f, http.MethodPost, "/admin/drain", drainAdminToken); got != http.StatusAccepted {
		t.Fatalf("POST /admin/drain: %d, want 202", got)
	}
	if got := httpStatus(t, f, http.MethodGet, "/readyz", ""); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d, want 503", got)
	}
	if got := httpStatus(t, f, http.MethodGet, "/healthz", ""); got != http.StatusOK {
		t.Fatalf("/healthz while draining: %d, want 200", got)
	}

	// A new call is nacked DRAINING at once, and never reaches the replica.
	second := client.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"2","method":"add","params":{"x":3,"y":4}}`)
	if ack := client.expectAck(second.ID); ack.OK || ack.Code != "DRAINING" || !strings.Contains(ack.Reason, "draining") {
		t.Fatalf("new call during the drain: %+v, want a DRAINING nack", ack)
	}

	// A new attach is refused with the reason.
	if p, err := tryDialRaw(f, "drain-newcomer", nil); err == nil {
		p.t = t
		p.expectClosed(websocket.StatusTryAgainLater, "draining")
	} else {
		t.Fatalf("dial during the drain: %v (want the upgrade, then a 1013 close)", err)
	}
	// So is a NodeAttach on a socket upgraded before the drain: a negative ack, then the close.
	if ack := late.attachAck(nil); ack.OK || ack.Code != "DRAINING" {
		t.Fatalf("NodeAttach during the drain: %+v, want a DRAINING refusal", ack)
	}
	late.expectClosed(websocket.StatusTryAgainLater, "draining")

	if got := f.metric(t, "fame_drain_refusals_total", `reason="new_call"`); got != 1 {
		t.Fatalf("fame_drain_refusals_total{new_call} = %v, want 1", got)
	}
	if got := f.metric(t, "fame_drain_refusals_total", `reason="attach"`); got != 1 {
		t.Fatalf("fame_drain_refusals_total{attach} = %v, want 1", got)
	}
	if got := f.metric(t, "fame_drain_refusals_total", `reason="node_attach"`); got != 1 {
		t.Fatalf("fame_drain_refusals_total{node_attach} = %v, want 1", got)
	}
	if got := f.metric(t, "fame_draining"); got != 1 {
		t.Fatalf("fame_draining = %v, want 1", got)
	}

	// The call in flight gets its reply, and only then do the connections close.
	reply, _ := envelope.New(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","result":3}`)})
	reply.To, reply.CorrID, reply.TraceID = req.ReplyTo, req.CorrID, req.TraceID
	replica.send(reply)
	for {
		e := client.recv()
		if e.FrameType() == envelope.TypeData && e.CorrID == first.CorrID {
			break
		}
	}
	client.expectClosed(websocket.StatusServiceRestart, "re-attach")
	replica.expectClosed(websocket.StatusServiceRestart, "re-attach")
	select {
	case <-f.s.Drained():
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not finish")
	}
}

// TestDrainAdminNeedsToken: with no admin token configured, POST /admin/drain is refused (403),
// counted, and the sentinel keeps serving: anyone who can reach the port must not be able to
// take it out of service.
func TestDrainAdminNeedsToken(t *testing.T) {
	f := newFabric(t, nil)
	before := f.metric(t, "fame_limit_refusals_total", `reason="admin_token"`)
	if got := httpStatus(t, f, http.MethodPost, "/admin/drain", ""); got != http.StatusForbidden {
		t.Fatalf("POST /admin/drain with no token configured: %d, want 403", got)
	}
	if got := f.metric(t, "fame_limit_refusals_total", `reason="admin_token"`); got != before+1 {
		t.Fatalf("fame_limit_refusals_total{admin_token} = %v, want %v", got, before+1)
	}
	if got := httpStatus(t, f, http.MethodGet, "/readyz", ""); got != http.StatusOK {
		t.Fatalf("/readyz after a refused drain: %d, want 200", got)
	}
	f.startReplica("drain-r1", "fame.fabric", nil, nil)
	c := f.connect(f.nodeConfig())
	for i := 0; i < 10; i++ {
		whoami(t, c)
	}
}
