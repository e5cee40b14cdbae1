package welcome

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
	"github.com/golang-jwt/jwt/v5"
)

const (
	target    = "Cb8WVCC4ML5RsFM"
	attachURL = "wss://sentinel/fame/v1/attach/ws/downstream"
	caURL     = "https://ca/fame/v1/ca"
	oauthIss  = "https://oauth2-server"
)

type fixture struct {
	srv      *httptest.Server
	oauthKey *jose.SigningKey
	svc      *Service
}

func newFixture(t *testing.T, mut func(*Config)) *fixture {
	t.Helper()
	ok, _ := jose.Generate()
	v, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{ok.Kid: ok.Public()}, Issuer: oauthIss,
		Audience: "fame.fabric", RequiredScopes: []string{token.ScopeNodeConnect}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{TargetSystemID: target, AttachURL: attachURL, CAServiceURL: caURL, Verifier: v,
		Grants: testGrants, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mut != nil {
		mut(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, oauthKey: ok, svc: svc}
}

func (f *fixture) bearer(t *testing.T, mut func(jwt.MapClaims)) string {
	now := time.Now()
	c := jwt.MapClaims{"iss": oauthIss, "aud": "fame.fabric", "sub": "client-1", "scope": "node.connect",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if mut != nil {
		mut(c)
	}
	s, err := f.oauthKey.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) post(t *testing.T, body []byte, bearer string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+HelloPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func helloBody(t *testing.T, h *envelope.NodeHello) []byte {
	t.Helper()
	e, err := envelope.New(h)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type grantJSON struct {
	Type, Purpose, URL string
	Auth               struct {
		Type          string `json:"type"`
		TokenProvider struct {
			Type, Token string
		} `json:"token_provider"`
		SubprotocolPrefix string `json:"subprotocol_prefix"`
		HeaderName        string `json:"header_name"`
	}
}

func decodeWelcome(t *testing.T, b []byte) (*envelope.NodeWelcome, []grantJSON) {
	t.Helper()
	e, err := envelope.Decode(b)
	if err != nil {
		t.Fatalf("response is not an envelope: %v\n%s", err, b)
	}
	f, err := e.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	w, ok := f.(*envelope.NodeWelcome)
	if !ok {
		t.Fatalf("frame %T", f)
	}
	var gs []grantJSON
	for _, raw := range w.ConnectionGrants {
		var g grantJSON
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	return w, gs
}

func TestHelloReferenceShape(t *testing.T) {
	f := newFixture(t, nil)
	body, err := os.ReadFile("testdata/hello-a6.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, b := f.post(t, body, f.bearer(t, nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	w, gs := decodeWelcome(t, b)
	if w.SystemID != "kid1" || w.TargetSystemID != target || w.TargetPhysicalPath != "/"+target ||
		w.AssignedPath != "/"+target+"/kid1" || w.InstanceID != "inst1" ||
		len(w.AcceptedLogicals) != 1 || w.AcceptedLogicals[0] != "*.fame.fabric" || w.ExpiresAt == "" ||
		string(w.Metadata) != `{"instance_id":"inst1"}` {
		t.Fatalf("welcome = %+v", w)
	}
	if len(gs) != 2 {
		t.Fatalf("grants = %+v", gs)
	}
	a, c := gs[0], gs[1]
	if a.Type != "WebSocketConnectionGrant" || a.Purpose != "node.attach" || a.URL != attachURL ||
		a.Auth.Type != "WebSocketSubprotocolAuth" || a.Auth.SubprotocolPrefix != "bearer" ||
		a.Auth.TokenProvider.Type != "StaticTokenProvider" {
		t.Fatalf("attach grant = %+v", a)
	}
	if c.Type != "HttpConnectionGrant" || c.Purpose != "ca_sign" || c.URL != caURL ||
		c.Auth.Type != "BearerTokenHeaderAuth" || c.Auth.HeaderName != "Authorization" {
		t.Fatalf("CA grant = %+v", c)
	}
	// The attach ticket verifies against the service's published JWKS.
	tv, err := ticket.NewTicketVerifier(ticket.VerifierConfig{
		Keys:   token.NewJWKSClient(f.srv.URL+JWKSPath, token.JWKSOptions{}),
		Issuer: "https://welcome/fame/welcome",
	})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tv.Verify(a.Auth.TokenProvider.Token, ticket.AttachInfo{SystemID: "kid1", InstanceID: "inst1", SentinelPath: "/" + target})
	if err != nil {
		t.Fatalf("attach ticket refused: %v", err)
	}
	if tk.AssignedPath != w.AssignedPath || !tk.AllowsLogical("math@*.fame.fabric") || tk.AllowsLogical("math@other.net") {
		t.Fatalf("ticket = %+v", tk.Claims)
	}
	if _, err := tv.Verify(c.Auth.TokenProvider.Token, ticket.AttachInfo{SystemID: "kid1", SentinelPath: "/" + target}); token.ReasonOf(err) != token.ReasonWrongAudience {
		t.Fatalf("CA grant accepted as attach ticket: %v", err)
	}
}

func TestHelloFromSentinelItself(t *testing.T) {
	f := newFixture(t, nil)
	resp, b := f.post(t, helloBody(t, &envelope.NodeHello{SystemID: target, InstanceID: "i"}), f.bearer(t, nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	w, gs := decodeWelcome(t, b)
	if w.AssignedPath != "/"+target || w.TargetSystemID != "" || len(gs) != 1 || gs[0].Purpose != "ca_sign" {
		t.Fatalf("root welcome = %+v grants %+v", w, gs)
	}
}

// Anonymous hellos (development) have no subject to look a grant up by; the
// global allow list is intersected as the reference does.
func TestHelloAnonymousLogicalsIntersected(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Verifier, c.AllowAnonymous, c.Grants = nil, true, nil
		c.AllowedLogicals = []string{"*.fame.fabric"}
		c.CAServiceURL = ""
	})
	resp, b := f.post(t, helloBody(t, &envelope.NodeHello{SystemID: "n1",
		Logicals: []string{"fame.fabric", "*.fame.fabric", "evil.org", "*"}}), "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	w, gs := decodeWelcome(t, b)
	if strings.Join(w.AcceptedLogicals, ",") != "fame.fabric,*.fame.fabric" || strings.Join(w.RejectedLogicals, ",") != "evil.org,*" {
		t.Fatalf("accepted %q rejected %q", w.AcceptedLogicals, w.RejectedLogicals)
	}
	if len(gs) != 1 {
		t.Fatalf("grants without CA URL = %+v", gs)
	}
}

func TestHelloRefusals(t *testing.T) {
	f := newFixture(t, nil)
	good := helloBody(t, &envelope.NodeHello{SystemID: "n1", Logicals: []string{"fame.fabric"}})
	attach, _ := envelope.New(&envelope.NodeAttach{SystemID: "n1"})
	attachBody, _ := attach.Marshal()
	cases := []struct {
		name   string
		body   []byte
		bearer string
		status int
		code   string
	}{
		{"no token", good, "", 401, "missing_token"},
		{"expired token", good, f.bearer(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), 401, "expired"},
		{"wrong audience", good, f.bearer(t, func(c jwt.MapClaims) { c["aud"] = "other" }), 401, "wrong_audience"},
		{"wrong scope", good, f.bearer(t, func(c jwt.MapClaims) { c["scope"] = "read" }), 401, "missing_scope"},
		{"wrong issuer", good, f.bearer(t, func(c jwt.MapClaims) { c["iss"] = "https://evil" }), 401, "wrong_issuer"},
		{"tampered token", good, f.bearer(t, nil) + "x", 401, "bad_signature"},
		{"not json", []byte("{"), f.bearer(t, nil), 400, "bad_envelope"},
		{"not a hello", attachBody, f.bearer(t, nil), 422, "bad_frame"},
		{"bad logical", helloBody(t, &envelope.NodeHello{SystemID: "n1", Logicals: []string{"bad_host!"}}), f.bearer(t, nil), 422, "bad_logical"},
		{"bad system id", helloBody(t, &envelope.NodeHello{SystemID: "../x"}), f.bearer(t, nil), 422, "bad_system_id"},
		{"no websocket", helloBody(t, &envelope.NodeHello{SystemID: "n1", SupportedTransports: []string{"http"}}), f.bearer(t, nil), 422, "no_transport"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := f.post(t, tc.body, tc.bearer)
			var e struct{ Detail, Code string }
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != tc.status || e.Code != tc.code || e.Detail == "" {
				t.Fatalf("got %d %s, want %d code %s", resp.StatusCode, b, tc.status, tc.code)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no target":  {AttachURL: attachURL, AllowAnonymous: true},
		"no attach":  {TargetSystemID: target, AllowAnonymous: true},
		"no auth":    {TargetSystemID: target, AttachURL: attachURL},
		"bad target": {TargetSystemID: "a/b", AttachURL: attachURL, AllowAnonymous: true},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"FAME_WELCOME_TARGET_SYSTEM_ID": target, "FAME_WELCOME_ATTACH_URL": attachURL,
		"FAME_CA_SERVICE_URL": caURL, "FAME_JWT_TRUSTED_ISSUER": oauthIss, "FAME_WELCOME_TICKET_TTL": "120",
		"FAME_WELCOME_GRANTS": "sub=replicas system_ids=math-replica* logicals=fame.fabric,*.fame.fabric; sub=client system_ids=*",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.TicketTTL != 2*time.Minute || len(c.Grants) != 2 || len(c.Grants[0].Logicals) != 2 || c.Grants[1].Logicals != nil || c.Auth.JWKSURL != oauthIss+"/.well-known/jwks.json" || c.Port != "8090" {
		t.Fatalf("config = %+v", c)
	}
	if _, err := New(c); err != nil {
		t.Fatalf("New(from env): %v", err)
	}
	env["FAME_WELCOME_TICKET_TTL"] = "soon"
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("bad TTL accepted")
	}
}

func FuzzWelcome(f *testing.F) {
	body, _ := os.ReadFile("testdata/hello-a6.json")
	f.Add(body)
	f.Add([]byte(`{"frame":{"type":"NodeHello","systemId":"x","logicals":[1]}}`))
	svc, err := New(Config{TargetSystemID: target, AttachURL: attachURL, AllowAnonymous: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	granted, err := New(Config{TargetSystemID: target, AttachURL: attachURL, Verifier: okVerifier(f), Grants: testGrants,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range []*Service{svc, granted} {
			out, err := s.Welcome("client-b", b)
			if err != nil {
				continue
			}
			w, _ := decodeWelcome(t, out)
			if s == granted && (!strings.HasPrefix(w.SystemID, "b-") || !slices.Equal(w.AcceptedLogicals, slices.DeleteFunc(slices.Clone(w.AcceptedLogicals), func(l string) bool { return l != "b.example.org" }))) {
				t.Fatalf("client-b was placed outside its grant: %+v", w)
			}
		}
	})
}
