package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/agent"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/gateway"
	"github.com/fame-go/fame/node"
)

// gatewayFor starts an HTTP gateway in front of f whose per-caller nodes attach with the
// caller's bearer token (as cmd/fame mounts it), and records the nodes it attached.
type gatewayRig struct {
	srv   *httptest.Server
	reg   *prometheus.Registry
	mu    sync.Mutex
	nodes []*node.Node
}

func newGatewayRig(t *testing.T, f *fabric, opts gateway.Options) *gatewayRig {
	t.Helper()
	rig := &gatewayRig{reg: prometheus.NewRegistry()}
	opts.Registerer = rig.reg
	opts.Connect = func(ctx context.Context, tok string) (gateway.Caller, error) {
		cfg := f.nodeConfig()
		if tok != "" {
			cfg.Token = func(context.Context) (string, error) { return tok, nil }
		}
		n, err := node.Connect(ctx, cfg)
		if err != nil {
			return nil, err
		}
		rig.mu.Lock()
		rig.nodes = append(rig.nodes, n)
		rig.mu.Unlock()
		return n, nil
	}
	g, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rig.srv = httptest.NewServer(g.Handler())
	t.Cleanup(func() { rig.srv.Close(); _ = g.Close() })
	return rig
}

func (rig *gatewayRig) refusals(t *testing.T, code string) float64 {
	t.Helper()
	mfs, err := rig.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "fame_gateway_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// post sends a raw HTTP request (the attacker's tool) and returns status and decoded body.
func (rig *gatewayRig) post(t *testing.T, path string, body []byte, hdr http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rig.srv.URL+"/fame/v1/gateway"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func serveAdd(t *testing.T, n *node.Node, addr string, caps ...string) {
	t.Helper()
	if err := n.ServeCapabilities(context.Background(), addr, node.Ops{
		"add": agent.Handle(func(_ context.Context, in struct{ X, Y int }) (int, error) { return in.X + in.Y, nil }),
	}, caps); err != nil {
		t.Fatal(err)
	}
}

const addBody = `{"targetAddr":"calc@fame.fabric","method":"add","params":{"X":3,"Y":4}}`

// TestGatewayOpenRPCAndMessages: the reference's gateway surface on an open fabric: /rpc by
// address and by capabilities, /messages delivered with the gateway caller's sid (not the
// sentinel's), /health, and the mapped errors (404 no route, 400 invalid body).
func TestGatewayOpenRPCAndMessages(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMISSION_PROFILE": "open"})
	serveAdd(t, f.connect(f.nodeConfig("fame.fabric")), "calc@fame.fabric", "calc.v1")
	rig := newGatewayRig(t, f, gateway.Options{})

	if st, body := rig.post(t, "/rpc", []byte(addBody), nil); st != 200 || body["ok"] != true || body["result"] != float64(7) {
		t.Fatalf("rpc by address: %d %v", st, body)
	}
	if st, body := rig.post(t, "/rpc", []byte(`{"capabilities":["calc.v1"],"method":"add","params":{"X":1,"Y":1},"timeoutMs":5000}`), nil); st != 200 || body["result"] != float64(2) {
		t.Fatalf("rpc by capability: %d %v", st, body)
	}
	if st, body := rig.post(t, "/rpc", []byte(`{"targetAddr":"nobody@fame.fabric","method":"add"}`), nil); st != 404 || body["code"] != "not_found" {
		t.Fatalf("no route: %d %v", st, body)
	}
	if st, body := rig.post(t, "/rpc", []byte(`{"method":"add"}`), nil); st != 400 || body["code"] != "invalid_request" {
		t.Fatalf("no target: %d %v", st, body)
	}
	resp, err := http.Get(rig.srv.URL + "/fame/v1/gateway/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()

	sink := dialRaw(t, f, "sink", nil)
	sink.attach("fame.fabric")
	if ack := sink.bind("sink@fame.fabric"); !ack.OK {
		t.Fatalf("bind sink: %+v", ack)
	}
	if st, body := rig.post(t, "/messages", []byte(`{"targetAddr":"sink@fame.fabric","type":"note","payload":{"n":1}}`), nil); st != 202 || body["status"] != "message_accepted" {
		t.Fatalf("messages: %d %v", st, body)
	}
	e := sink.recv()
	fr, _ := e.DecodeFrame()
	d, ok := fr.(*envelope.Data)
	if !ok || !strings.Contains(string(d.Payload), `"type":"note"`) || !strings.Contains(string(d.Payload), `"n":1`) {
		t.Fatalf("sink got %s", e.Frame)
	}
	rig.mu.Lock()
	callerSID := envelope.SecureDigest(rig.nodes[0].AssignedPath())
	rig.mu.Unlock()
	if e.SID != callerSID {
		t.Fatalf("message sid %q, want the gateway caller's %q", e.SID, callerSID)
	}
}

// gatewayToken runs the client-credentials grant of the direct stack's OAuth2 server for aud.
func gatewayToken(t *testing.T, d *directStack, aud string) string {
	t.Helper()
	return clientCredentialsToken(t, d.oauthURL+oauth2.TokenPath, directMathClient, directMathSecret, aud)
}

// clientCredentialsToken runs the client-credentials grant (scope node.connect) at tokenURL.
func clientCredentialsToken(t *testing.T, tokenURL, id, secret, aud string) string {
	t.Helper()
	resp, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"},
		"client_id": {id}, "client_secret": {secret}, "scope": {token.ScopeNodeConnect}, "audience": {aud}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token endpoint %s: %d %v", tokenURL, resp.StatusCode, err)
	}
	return body.AccessToken
}

// TestAttackGateway plays an HTTP attacker against the gateway in front of a token-checking
// sentinel (direct admission): no token, a token for another audience, an oversized body
// and a cross-origin request from a disallowed origin are each refused with the exact status
// and code, the refusal counter moves, and a legitimate caller is served 10 times after.
func TestAttackGateway(t *testing.T) {
	d := newDirectStack(t)
	d.startReplica("math-replica1", "*.fame.fabric", nil, d.as(directReplicasClient, directReplicasSecret))
	srvCfg := d.nodeConfig("*.fame.fabric")
	srvCfg.SystemID = "math-replica-calc"
	d.as(directReplicasClient, directReplicasSecret)(&srvCfg)
	serveAdd(t, d.connect(srvCfg), "calc@fame.fabric")
	rig := newGatewayRig(t, d.fabric, gateway.Options{RequireToken: true, AllowedOrigins: []string{"https://app.example"}})
	good := http.Header{"Authorization": {"Bearer " + gatewayToken(t, d, directAudience)}}

	cases := []struct {
		name   string
		body   []byte
		hdr    http.Header
		status int
		code   string
	}{
		{"no token", []byte(addBody), nil, 401, "unauthorized"},
		{"malformed authorization", []byte(addBody), http.Header{"Authorization": {"Basic abc"}}, 401, "unauthorized"},
		{"wrong audience", []byte(addBody), http.Header{"Authorization": {"Bearer " + gatewayToken(t, d, "evil.fabric")}}, 401, "unauthorized"},
		{"oversized body", []byte(`{"targetAddr":"calc@fame.fabric","method":"add","params":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`), good, 413, "payload_too_large"},
		{"disallowed origin", []byte(addBody), http.Header{"Authorization": good["Authorization"], "Origin": {"https://evil.example"}}, 403, "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rig.refusals(t, tc.code)
			st, body := rig.post(t, "/rpc", tc.body, tc.hdr)
			if st != tc.status || body["ok"] != false || body["code"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", st, body, tc.status, tc.code)
			}
			if after := rig.refusals(t, tc.code); after != before+1 {
				t.Fatalf("fame_gateway_refusals_total{reason=%s}: %v -> %v", tc.code, before, after)
			}
		})
	}
	// The allowed origin gets CORS headers; the victim keeps serving.
	for i := 0; i < 10; i++ {
		hdr := http.Header{"Authorization": good["Authorization"], "Origin": {"https://app.example"}}
		st, body := rig.post(t, "/rpc", []byte(addBody), hdr)
		if st != 200 || body["result"] != float64(7) {
			t.Fatalf("legitimate call %d: %d %v", i, st, body)
		}
	}
}
