package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/node/admit"
)

// fakeCaller answers every call with err (or result 1) and counts connects.
type fakeCaller struct{ err error }

func (f *fakeCaller) Call(_ context.Context, _, _ string, _, result any) error {
	if f.err != nil {
		return f.err
	}
	*(result.(*json.RawMessage)) = json.RawMessage("1")
	return nil
}
func (f *fakeCaller) CallCapabilities(ctx context.Context, _ []string, m string, p, r any) error {
	return f.Call(ctx, "", m, p, r)
}
func (f *fakeCaller) Send(context.Context, string, []string, any) error { return f.err }
func (f *fakeCaller) Close() error                                      { return nil }

func newTest(t *testing.T, callErr error, opts Options) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var connects atomic.Int32
	opts.Connect = func(context.Context, string) (Caller, error) {
		connects.Add(1)
		return &fakeCaller{err: callErr}, nil
	}
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.Close(); _ = g.Close() })
	return srv, &connects
}

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestGatewayErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{node.ErrTimeout, 504, "timeout"},
		{&node.NackError{Code: "NO_ROUTE"}, 404, "not_found"},
		{&node.NackError{Code: "OVERLOADED"}, 429, "queue_full"},
		{&node.NackError{Code: "UNAUTHORIZED"}, 403, "forbidden"},
		{&node.NackError{Code: "RATE_LIMITED", Reason: "RATE_LIMITED: ...; retry_after_ms=2500"}, 429, "rate_limited"},
		{&node.NackError{Code: "DRAINING", Reason: "sentinel is draining"}, 503, "unavailable"},
		{&node.RemoteError{Code: -32029, Message: "Rate limit exceeded"}, 429, "queue_full"},
		{&node.RemoteError{Code: -32602, Message: "Invalid parameters"}, 400, "invalid_request"},
		{&node.AttachError{Refused: true, Reason: "bad token", CloseCode: -1}, 401, "unauthorized"},
		{errors.New("boom"), 500, "internal"},
	}
	for _, tc := range cases {
		srv, _ := newTest(t, tc.err, Options{})
		resp, body := do(t, "POST", srv.URL+DefaultBasePath+"/rpc", `{"targetAddr":"a@fame.fabric","method":"m"}`, nil)
		if resp.StatusCode != tc.status || body["code"] != tc.code || body["ok"] != false {
			t.Errorf("%v: got %d %v, want %d %s", tc.err, resp.StatusCode, body, tc.status, tc.code)
		}
		if want := map[string]string{"rate_limited": "3", "unavailable": "1"}[tc.code]; resp.Header.Get("Retry-After") != want {
			t.Errorf("%v: Retry-After %q, want %q", tc.err, resp.Header.Get("Retry-After"), want)
		}
	}
}

// Input the gateway cannot pass on as given is refused 400, never silently changed.
func TestGatewayRefusesWhatItWouldChange(t *testing.T) {
	srv, _ := newTest(t, nil, Options{})
	rpc := srv.URL + DefaultBasePath + "/rpc"
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"targetAddr":"a@fame.fabric","method":"m","params":[1,2]}`, true},
		{`{"targetAddr":"a@fame.fabric","method":"m","params":null,"timeoutMs":null}`, true},
		{`{"targetAddr":"a@fame.fabric","method":"m","params":"x"}`, false},
		{`{"targetAddr":"a@fame.fabric","method":"m","params":3}`, false},
		{`{"targetAddr":"a@fame.fabric","method":"m","timeoutMs":"soon"}`, false},
		{`{"targetAddr":"a@fame.fabric","method":"m","timeoutMs":-5}`, false},
		{`{"capabilities":["a",1],"method":"m"}`, false},
		{`{"capabilities":["a",""],"method":"m"}`, false},
		{`{"capabilities":"a","method":"m"}`, false},
	} {
		resp, out := do(t, "POST", rpc, c.body, nil)
		if c.ok && resp.StatusCode != 200 {
			t.Errorf("%s: %d %v, want 200", c.body, resp.StatusCode, out)
		}
		if !c.ok && (resp.StatusCode != 400 || out["code"] != "invalid_request") {
			t.Errorf("%s: %d %v, want 400 invalid_request", c.body, resp.StatusCode, out)
		}
	}
}

func TestGatewayRequestLimitsAndCORS(t *testing.T) {
	srv, connects := newTest(t, nil, Options{AllowedOrigins: []string{"https://ok.example"}, BodyLimit: 512})
	rpc := srv.URL + DefaultBasePath + "/rpc"
	caps := `["` + strings.Repeat(`c","`, 16) + `c"]`
	for _, body := range []string{
		`[]`, `{"method":"m"}`, `{"targetAddr":"not an address","method":"m"}`,
		`{"targetAddr":"a@fame.fabric","method":"` + strings.Repeat("m", 257) + `"}`,
		`{"capabilities":` + caps + `,"method":"m"}`,
	} {
		if resp, out := do(t, "POST", rpc, body, nil); resp.StatusCode != 400 || out["code"] != "invalid_request" {
			t.Errorf("%.60s: got %d %v", body, resp.StatusCode, out)
		}
	}
	if resp, _ := do(t, "POST", rpc, `{"targetAddr":"a@fame.fabric","method":"m","params":{"p":"`+strings.Repeat("x", 600)+`"}}`, nil); resp.StatusCode != 413 {
		t.Errorf("oversized: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", rpc, ``, nil); resp.StatusCode != 405 {
		t.Errorf("GET /rpc: %d", resp.StatusCode)
	}
	if connects.Load() != 0 {
		t.Errorf("refused requests attached %d nodes", connects.Load())
	}
	resp, _ := do(t, "OPTIONS", rpc, ``, map[string]string{"Origin": "https://ok.example"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://ok.example" {
		t.Errorf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "OPTIONS", rpc, ``, map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
	}
	// One node per token, reused.
	for i := 0; i < 3; i++ {
		if resp, out := do(t, "POST", rpc, `{"targetAddr":"a@fame.fabric","method":"m"}`, map[string]string{"Authorization": "Bearer t1"}); resp.StatusCode != 200 || out["result"] != float64(1) {
			t.Fatalf("call: %d %v", resp.StatusCode, out)
		}
	}
	if connects.Load() != 1 {
		t.Errorf("connects = %d, want 1 for one token", connects.Load())
	}
	if resp, out := do(t, "POST", srv.URL+DefaultBasePath+"/messages", `{"targetAddr":"a@fame.fabric"}`, nil); resp.StatusCode != 400 {
		t.Errorf("message without type or payload: %d %v", resp.StatusCode, out)
	}
}

func TestGatewayRefusedTokenCached(t *testing.T) {
	var connects atomic.Int32
	g, err := New(Options{Connect: func(context.Context, string) (Caller, error) {
		connects.Add(1)
		return nil, &node.AttachError{Refused: true, Reason: "bad token", CloseCode: -1}
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	defer g.Close()
	for i := 0; i < 3; i++ {
		resp, out := do(t, "POST", srv.URL+DefaultBasePath+"/rpc", `{"targetAddr":"a@fame.fabric","method":"m"}`, map[string]string{"Authorization": "Bearer bad"})
		if resp.StatusCode != 401 || out["code"] != "unauthorized" {
			t.Fatalf("bad token: %d %v", resp.StatusCode, out)
		}
	}
	if connects.Load() != 1 {
		t.Fatalf("a refused token attached %d times, want 1", connects.Load())
	}
}

// TestGatewayRefusalHidesInternalURLs: an admission or attach failure tells the HTTP caller
// what the refusing service answered, never the URL of the welcome service or the sentinel,
// nor a transport error naming an internal host.
func TestGatewayRefusalHidesInternalURLs(t *testing.T) {
	const internal = "welcome.internal"
	cases := []struct {
		name     string
		err      error
		status   int
		code     string
		wantText string // the part of the service's own answer the caller does get
	}{
		{"welcome refused the bearer", fmt.Errorf("gateway: admit: %w", &admit.HTTPError{Op: "hello", URL: "http://" + internal + ":8090/fame/v1/welcome/hello",
			Status: 401, Code: "invalid_token", Description: "token expired"}), 401, "unauthorized", "token expired"},
		{"welcome refused the request", &admit.HTTPError{Op: "hello", URL: "http://" + internal + "/x", Status: 400, Code: "bad_request"}, 403, "forbidden", "HTTP 400 bad_request"},
		{"welcome unreachable", fmt.Errorf("admit: hello: POST http://%s:8090/hello: dial tcp 10.0.0.5:8090: connection refused: %w", internal, admit.ErrUnavailable), 503, "unavailable", "admission unavailable"},
		{"sentinel refused the attach", &node.AttachError{Refused: true, Reason: "certificate refused", CloseCode: -1}, 401, "unauthorized", "certificate refused"},
		{"sentinel unreachable", &node.AttachError{Reason: "dial ws://" + internal + ":8000/fame/v1/attach/ws/downstream: connection refused", CloseCode: -1}, 503, "unavailable", "fabric unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := New(Options{Connect: func(context.Context, string) (Caller, error) { return nil, c.err }})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(g.Handler())
			defer srv.Close()
			defer g.Close()
			resp, out := do(t, "POST", srv.URL+DefaultBasePath+"/rpc", `{"targetAddr":"a@fame.fabric","method":"m"}`, map[string]string{"Authorization": "Bearer x"})
			msg, _ := out["error"].(string)
			if resp.StatusCode != c.status || out["code"] != c.code {
				t.Fatalf("%d %v, want %d %s", resp.StatusCode, out, c.status, c.code)
			}
			if strings.Contains(msg, internal) || strings.Contains(msg, "10.0.0.5") || strings.Contains(msg, "://") {
				t.Fatalf("the HTTP caller learns an internal address: %q", msg)
			}
			if !strings.Contains(msg, c.wantText) {
				t.Fatalf("error %q does not carry %q", msg, c.wantText)
			}
		})
	}
}
