package admit

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/envelope"
)

func (s *stack) welcomeConfig(t testing.TB, systemID string, logicals ...string) *Welcome {
	t.Helper()
	src, err := s.clientCredentials().TokenSource()
	if err != nil {
		t.Fatal(err)
	}
	return &Welcome{ServiceURL: s.wSrv.URL + welcome.HelloPath, TokenSource: src, SystemID: systemID,
		InstanceID: "inst1", Logicals: logicals, HTTPClient: s.wSrv.Client(), Now: s.clock}
}

func TestWelcomeHelloGrant(t *testing.T) {
	s := newStack(t, stackOpts{})
	// A logical outside the client's grant refuses the hello (403).
	_, err := s.welcomeConfig(t, "r1node", "*.fame.fabric", "bad.example.org").Hello(t.Context())
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Code != welcome.CodeLogicalNotGranted {
		t.Fatalf("hello beyond the grant: %v", err)
	}
	g, err := s.welcomeConfig(t, "r1node", "*.fame.fabric").Hello(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if g.AttachURL != testAttach || g.AttachPrefix != "bearer" || g.TargetSystemID != testSentinel ||
		g.AssignedPath != "/"+testSentinel+"/r1node" || g.CAURL != s.cSrv.URL+"/fame/v1/ca" ||
		g.CAHeaderName != "Authorization" || g.InstanceID != "inst1" {
		t.Fatalf("grant: %+v", g)
	}
	if !slices.Equal(g.AcceptedLogicals, []string{"*.fame.fabric"}) || len(g.RejectedLogicals) != 0 {
		t.Fatalf("logicals: accepted %v rejected %v", g.AcceptedLogicals, g.RejectedLogicals)
	}
	// Default ticket TTL is 5 min; the welcome's own 1 h is later.
	if d := g.ExpiresAt.Sub(time.Now()); d < 4*time.Minute || d > 5*time.Minute+time.Second {
		t.Fatalf("ExpiresAt in %v, want about 5 min", d)
	}
	tk := s.verifyTicket(t, g.AttachToken, "r1node")
	if tk.AssignedPath != g.AssignedPath || !tk.AllowsLogical("math@*.fame.fabric") || tk.AllowsLogical("x@bad.example.org") {
		t.Fatalf("ticket claims: %+v", tk.Claims)
	}
}

func TestWelcomeTokenSourceRenewsTicket(t *testing.T) {
	clk := newFakeClock()
	s := newStack(t, stackOpts{clock: clk.Now, ticketTTL: 30 * time.Second, tokenTTL: time.Hour})
	ws, err := NewWelcomeTokenSource(s.welcomeConfig(t, "r1node", "*.fame.fabric"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := ws.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(19 * time.Second)
	if tok, _ := ws.Token(t.Context()); tok != first || s.hellos.Load() != 1 {
		t.Fatalf("before 2/3: same=%v hellos=%d", tok == first, s.hellos.Load())
	}
	clk.Advance(time.Second)
	tok, err := ws.Token(t.Context())
	if err != nil || tok == first || s.hellos.Load() != 2 {
		t.Fatalf("at 2/3: %v same=%v hellos=%d", err, tok == first, s.hellos.Load())
	}
	s.verifyTicket(t, tok, "r1node")
	if u, err := ws.AttachURL(t.Context()); err != nil || u != testAttach {
		t.Fatalf("AttachURL = %q, %v", u, err)
	}
	// The OAuth2 token (1 h) was reused for the second hello.
	if n := s.tokens.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	ws.Invalidate()
	if tok2, err := ws.Token(t.Context()); err != nil || tok2 == tok || s.hellos.Load() != 3 {
		t.Fatalf("after Invalidate: %v same=%v hellos=%d", err, tok2 == tok, s.hellos.Load())
	}
}

// The welcome refuses a token signed by a key the OAuth2 server no longer
// has (a restart); Hello drops the cached token and retries once.
func TestWelcomeRetriesWithFreshTokenOn401(t *testing.T) {
	s := newStack(t, stackOpts{})
	w := s.welcomeConfig(t, "r1node")
	src := w.TokenSource.(*OAuth2Source)
	if _, err := src.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	refused := false
	gate := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !refused {
			refused = true
			rw.WriteHeader(http.StatusUnauthorized)
			_, _ = rw.Write([]byte(`{"detail":"Authentication failed: bad_signature","code":"bad_signature"}`))
			return
		}
		s.wSrv.Config.Handler.ServeHTTP(rw, r)
	}))
	defer gate.Close()
	w.ServiceURL = gate.URL + welcome.HelloPath
	if _, err := w.Hello(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := s.tokens.Load(); n != 2 {
		t.Fatalf("token requests = %d, want 2 (refetch after 401)", n)
	}
}

func TestWelcomeErrors(t *testing.T) {
	s := newStack(t, stackOpts{})
	fixed := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	reject, _ := envelope.New(&envelope.NodeReject{Reason: "no room"})
	rejectBody, _ := reject.Marshal()
	other, _ := envelope.New(&envelope.NodeWelcome{SystemID: "someone-else"})
	otherBody, _ := other.Marshal()
	tests := []struct {
		name  string
		url   string
		token bool
		sys   string
		want  error
	}{
		{"no bearer", s.wSrv.URL + welcome.HelloPath, false, "r1node", ErrUnauthorized},
		{"invalid system id", s.wSrv.URL + welcome.HelloPath, true, "bad/id", ErrRejected},
		{"bad JSON", fixed(200, "{oops"), true, "r1node", ErrBadResponse},
		{"NodeReject", fixed(200, string(rejectBody)), true, "r1node", ErrRejected},
		{"placed as another node", fixed(200, string(otherBody)), true, "r1node", ErrBadResponse},
		{"server error", fixed(500, `{"detail":"welcome failed"}`), true, "r1node", ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := s.welcomeConfig(t, tc.sys)
			w.ServiceURL, w.HTTPClient = tc.url, nil
			if !tc.token {
				w.TokenSource = nil
			}
			if _, err := w.Hello(t.Context()); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := (&Welcome{ServiceURL: "x", SystemID: "a"}).Hello(t.Context()); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad URL: %v", err)
	}
}

func TestParseWelcomeShapes(t *testing.T) {
	now := time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)
	a6, err := os.ReadFile("testdata/welcome-a6.json")
	if err != nil {
		t.Fatal(err)
	}
	camel, err := os.ReadFile("testdata/welcome-camel.json")
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseWelcome(a6, now)
	if err != nil {
		t.Fatal(err)
	}
	want := Grant{SystemID: "kid1", InstanceID: "inst1", AttachURL: "wss://sentinel/fame/v1/attach/ws/downstream",
		AttachToken: "attach.jwt.token", AttachPrefix: "bearer", ExpiresAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		AssignedPath: "/Cb8WVCC4ML5RsFM/kid1", TargetSystemID: "Cb8WVCC4ML5RsFM", TargetPhysicalPath: "/Cb8WVCC4ML5RsFM",
		AcceptedLogicals: []string{"*.fame.fabric"}, CAURL: "https://ca/fame/v1/ca", CAToken: "ca.jwt.token", CAHeaderName: "Authorization"}
	if !grantEqual(g, &want) {
		t.Fatalf("A.6 grant:\n got %+v\nwant %+v", g, want)
	}
	g, err = ParseWelcome(camel, now)
	if err != nil {
		t.Fatal(err)
	}
	if g.AttachToken != "t1" || g.AttachPrefix != "ticket" || g.CAToken != "t2" || g.CAHeaderName != "X-CA-Token" ||
		!g.ExpiresAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 5e8, time.UTC)) || !slices.Equal(g.RejectedLogicals, []string{"evil.org"}) {
		t.Fatalf("camelCase grant: %+v", g)
	}

	frame := func(grants string) []byte {
		return []byte(`{"version":"1.0","id":"x","frame":{"type":"NodeWelcome","systemId":"n1","connectionGrants":[` + grants + `]}}`)
	}
	bad := []struct {
		name string
		body []byte
		want error
	}{
		{"not JSON", []byte("nope"), ErrBadResponse},
		{"wrong frame", []byte(`{"version":"1.0","id":"x","frame":{"type":"NodeHeartbeat"}}`), ErrBadResponse},
		{"reject", []byte(`{"version":"1.0","id":"x","frame":{"type":"NodeReject","reason":"full"}}`), ErrRejected},
		{"no system id", []byte(`{"version":"1.0","id":"x","frame":{"type":"NodeWelcome"}}`), ErrBadResponse},
		{"grant not object", frame(`1`), ErrBadResponse},
		{"attach http URL", frame(`{"purpose":"node.attach","url":"http://x"}`), ErrBadResponse},
		{"ca ws URL", frame(`{"purpose":"ca_sign","url":"ws://x"}`), ErrBadResponse},
		{"oauth2 provider", frame(`{"purpose":"node.attach","url":"ws://x","auth":{"type":"WebSocketSubprotocolAuth","token_provider":{"type":"OAuth2ClientCredentialsTokenProvider"}}}`), ErrBadResponse},
		{"no provider", frame(`{"purpose":"node.attach","url":"ws://x","auth":{"type":"WebSocketSubprotocolAuth"}}`), ErrBadResponse},
		{"empty token", frame(`{"purpose":"node.attach","url":"ws://x","auth":{"token_provider":{"token":""}}}`), ErrBadResponse},
		{"token with comma", frame(`{"purpose":"node.attach","url":"ws://x","auth":{"token_provider":{"token":"a,b"}}}`), ErrBadResponse},
	}
	for _, tc := range bad {
		if _, err := ParseWelcome(tc.body, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}

	// NoAuth and type-only attach grants are accepted without a token; the
	// first attach grant wins; unknown purposes are ignored.
	g, err = ParseWelcome(frame(`{"type":"WebSocketConnectionGrant","url":"ws://a","auth":{"type":"NoAuth"}},`+
		`{"purpose":"node.attach","url":"ws://b"},{"purpose":"metrics","url":"zzz"}`), now)
	if err != nil || g.AttachURL != "ws://a" || g.AttachToken != "" || !g.ExpiresAt.Equal(now.Add(DefaultTokenTTL)) {
		t.Fatalf("NoAuth grant: %+v %v", g, err)
	}
	if g, err := ParseWelcome(frame(``), now); err != nil || g.HasAttach() {
		t.Fatalf("root welcome: %+v %v", g, err)
	}
}

func grantEqual(a, b *Grant) bool {
	return a.SystemID == b.SystemID && a.InstanceID == b.InstanceID && a.AttachURL == b.AttachURL &&
		a.AttachToken == b.AttachToken && a.AttachPrefix == b.AttachPrefix && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.AssignedPath == b.AssignedPath && a.TargetSystemID == b.TargetSystemID &&
		a.TargetPhysicalPath == b.TargetPhysicalPath && slices.Equal(a.AcceptedLogicals, b.AcceptedLogicals) &&
		slices.Equal(a.RejectedLogicals, b.RejectedLogicals) && a.CAURL == b.CAURL && a.CAToken == b.CAToken &&
		a.CAHeaderName == b.CAHeaderName
}
