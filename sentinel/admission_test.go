package sentinel

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
)

// ---- fixtures ----

// oauthFixture is a real dev OAuth2 server (admission/oauth2) on an httptest listener, plus its
// key so tests can also mint tokens the server would never issue.
type oauthFixture struct {
	url string
	key *jose.SigningKey
}

const (
	testClientID, testClientSecret = "peer-client", "peer-secret"
	testAudience                   = "fame.fabric"
)

func newOAuthFixture(t *testing.T) *oauthFixture {
	t.Helper()
	key, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	s, err := oauth2.New(oauth2.Config{
		Issuer: srv.URL, Audience: testAudience, Key: key,
		Clients:       []oauth2.Client{{ID: testClientID, Secret: testClientSecret}},
		AllowedScopes: []string{token.ScopeNodeConnect, "metrics.read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h = s
	return &oauthFixture{url: srv.URL, key: key}
}

// fetch runs the client-credentials grant as the reference's token provider does.
func (f *oauthFixture) fetch(t *testing.T, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID},
		"client_secret": {testClientSecret}, "scope": {scope}, "audience": {testAudience}}
	resp, err := http.PostForm(f.url+oauth2.TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || body.AccessToken == "" {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, b)
	}
	return body.AccessToken
}

// mint signs a token like the server's, after mut has changed its claims.
func (f *oauthFixture) mint(t *testing.T, key *jose.SigningKey, mut func(*token.Claims)) string {
	t.Helper()
	now := time.Now()
	c := &token.Claims{Issuer: f.url, Subject: testClientID, ClientID: testClientID,
		Audience: token.Audience{testAudience}, IssuedAt: jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		Scope: token.ScopeNodeConnect}
	if mut != nil {
		mut(c)
	}
	s, err := key.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// welcomeFixture stands in for the welcome service: its JWKS on an httptest listener and a
// ticket issuer with the matching key.
type welcomeFixture struct {
	jwksURL string
	issuer  *ticket.Issuer
}

const testWelcomeIssuer = "https://welcome/fame/welcome"

func newWelcomeFixture(t *testing.T) *welcomeFixture {
	t.Helper()
	key, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.SetOf(key))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	return &welcomeFixture{jwksURL: srv.URL + "/fame/welcome/.well-known/jwks.json",
		issuer: &ticket.Issuer{Key: key, Issuer: testWelcomeIssuer}}
}

func (f *welcomeFixture) ticketFor(t *testing.T, sentinelPath, systemID string, logicals ...string) string {
	t.Helper()
	return f.ticketForInstance(t, sentinelPath, systemID, "", logicals...)
}

// ticketForInstance issues a ticket bound to an instance id ("" binds none).
func (f *welcomeFixture) ticketForInstance(t *testing.T, sentinelPath, systemID, instance string, logicals ...string) string {
	t.Helper()
	tok, _, err := f.issuer.IssueAttach(ticket.Placement{SystemID: systemID, InstanceID: instance,
		ParentPath: sentinelPath, AssignedPath: sentinelPath + "/" + systemID, AcceptedLogicals: logicals})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dialBearer opens an attach WebSocket presenting tok the way the reference's
// WebSocketSubprotocolAuth does: Sec-WebSocket-Protocol "bearer,<token>".
func dialBearer(t *testing.T, ts *testSentinel, id, tok string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var opts websocket.DialOptions
	if tok != "" {
		opts.Subprotocols = []string{"bearer", tok}
	}
	ws, _, err := websocket.Dial(ctx, ts.url+"/fame/v1/attach/ws/downstream/"+id, &opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// admitted wraps an accepted connection as a rawPeer for the handshake helpers.
func admitted(t *testing.T, ws *websocket.Conn, id string) *rawPeer {
	t.Helper()
	if got := ws.Subprotocol(); got != "bearer" {
		t.Fatalf("handshake selected subprotocol %q, want bearer", got)
	}
	p := &rawPeer{t: t, ws: ws, id: id, flow: envelope.NewID()}
	p.startReader()
	return p
}

// expectAuthRefused checks the reference's refusal: one text frame holding a negative
// NodeAttachAck, then close 1008 "Authentication failed".
func expectAuthRefused(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("want a NodeAttachAck before the close, got %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("refusal sent as %v, want a text frame", typ)
	}
	var env struct {
		Frame struct {
			Type   string `json:"type"`
			OK     *bool  `json:"ok"`
			Reason string `json:"reason"`
		} `json:"frame"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("refusal is not JSON: %q", b)
	}
	if env.Frame.Type != envelope.TypeNodeAttachAck || env.Frame.OK == nil || *env.Frame.OK || env.Frame.Reason != "Authentication failed" {
		t.Fatalf("refusal frame: %s", b)
	}
	_, _, err = ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "Authentication failed" {
		t.Fatalf("want close 1008 Authentication failed, got %v", err)
	}
}

// waitLog waits until the sentinel has logged want (the refusal is logged before the ack is
// written, so this normally succeeds at once).
func waitLog(t *testing.T, ts *testSentinel, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(ts.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("sentinel log lacks %q:\n%s", want, ts.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tamper rewrites the payload of a compact JWS while keeping its signature.
func tamper(t *testing.T, tok string, mut func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	mut(claims)
	raw, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// ---- direct profile: OAuth2 access tokens ----

// startDirectSentinel runs a sentinel with FAME_ADMISSION_PROFILE=direct against f.
func startDirectSentinel(t *testing.T, f *oauthFixture, bindSubject bool) *testSentinel {
	t.Helper()
	return startDirectSentinelEnv(t, f, bindSubject, nil)
}

// startDirectSentinelEnv is startDirectSentinel with more variables.
func startDirectSentinelEnv(t *testing.T, f *oauthFixture, bindSubject bool, more map[string]string) *testSentinel {
	t.Helper()
	env := map[string]string{
		"FAME_ADMISSION_PROFILE":                   "direct",
		"FAME_JWT_TRUSTED_ISSUER":                  f.url,
		"FAME_JWKS_URL":                            f.url + oauth2.JWKSPath,
		"FAME_JWT_AUDIENCE":                        testAudience,
		"FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY": strconv.FormatBool(bindSubject),
	}
	maps.Copy(env, more)
	return startSentinel(t, env)
}

func TestDirectAdmissionAcceptsServerToken(t *testing.T) {
	f := newOAuthFixture(t)
	ts := startDirectSentinel(t, f, false)
	p := admitted(t, dialBearer(t, ts, "agentOK1", f.fetch(t, token.ScopeNodeConnect)), "agentOK1")
	ack := p.attach("fame.fabric")
	if ack.AssignedPath != ts.PhysicalPath()+"/agentOK1" {
		t.Fatalf("assigned path %q", ack.AssignedPath)
	}
	if b := p.bind("math@fame.fabric"); !b.OK {
		t.Fatalf("bind refused: %+v", b)
	}
}

func TestDirectAdmissionRefusals(t *testing.T) {
	f := newOAuthFixture(t)
	ts := startDirectSentinel(t, f, false)
	other, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	impostor := *other
	impostor.Kid = f.key.Kid // same kid, different key: only the signature can tell
	cases := []struct {
		name   string
		tok    func() string
		reason string // what the sentinel must log
	}{
		{"no token", func() string { return "" }, ErrNoCredentials.Error()},
		{"garbage", func() string { return "not.a.jwt" }, string(token.ReasonMalformed)},
		{"expired", func() string {
			return f.mint(t, f.key, func(c *token.Claims) {
				c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Hour))
				c.NotBefore = c.IssuedAt
				c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			})
		}, string(token.ReasonExpired)},
		{"wrong audience", func() string {
			return f.mint(t, f.key, func(c *token.Claims) { c.Audience = token.Audience{"other.fabric"} })
		}, string(token.ReasonWrongAudience)},
		{"wrong scope from the server", func() string { return f.fetch(t, "metrics.read") }, string(token.ReasonMissingScope)},
		{"wrong issuer", func() string {
			return f.mint(t, f.key, func(c *token.Claims) { c.Issuer = "https://evil.example" })
		}, string(token.ReasonWrongIssuer)},
		{"tampered payload", func() string {
			return tamper(t, f.fetch(t, token.ScopeNodeConnect), func(c map[string]any) { c["aud"] = "fame.fabric"; c["sub"] = "admin" })
		}, string(token.ReasonBadSignature)},
		{"signed by another key", func() string { return f.mint(t, &impostor, nil) }, string(token.ReasonBadSignature)},
		{"unknown kid", func() string { return f.mint(t, other, nil) }, string(token.ReasonUnknownKey)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := "agentBad" + string(rune('A'+i))
			ws := dialBearer(t, ts, id, tc.tok())
			expectAuthRefused(t, ws)
			waitLog(t, ts, tc.reason)
		})
	}
	// Nothing refused may have left a route behind.
	if snap := ts.routes.snapshot(); snap.Children != 0 || len(snap.Exact) != 0 {
		t.Fatalf("routes after refusals: %+v", snap)
	}
}

func TestDirectAdmissionSubjectBinding(t *testing.T) {
	f := newOAuthFixture(t)
	ts := startDirectSentinel(t, f, true)
	a := ts.auth
	ctx := context.Background()
	own := f.mint(t, f.key, func(c *token.Claims) { c.Subject = "nodeS1" })
	if p, err := a.Authenticate(ctx, own, "nodeS1"); err != nil || p.SystemID != "nodeS1" {
		t.Fatalf("own subject: %+v %v", p, err)
	}
	if _, err := a.Authenticate(ctx, own, "nodeS2"); err == nil {
		t.Fatal("a token for nodeS1 admitted nodeS2")
	}
	trusted := f.mint(t, f.key, func(c *token.Claims) { c.Scope = "node.connect node.trusted" })
	if p, err := a.Authenticate(ctx, trusted, "nodeS2"); err != nil || p.SystemID != "" {
		t.Fatalf("trusted client: %+v %v", p, err)
	}
	// End to end: the subject's own id attaches, another id is refused at the upgrade.
	p := admitted(t, dialBearer(t, ts, "nodeS1", own), "nodeS1")
	p.attach("fame.fabric")
	expectAuthRefused(t, dialBearer(t, ts, "nodeS2", own))
	waitLog(t, ts, `subject \"nodeS1\" may not attach as \"nodeS2\"`)
}

// ---- welcome profile: attach tickets ----

const testSentinelID = "Cb8WVCC4ML5RsFM"

func startWelcomeSentinel(t *testing.T, f *welcomeFixture) *testSentinel {
	t.Helper()
	return startSentinel(t, map[string]string{"FAME_ADMISSION_PROFILE": "welcome", "FAME_NODE_ID": testSentinelID,
		"FAME_JWT_TRUSTED_ISSUER": testWelcomeIssuer, "FAME_JWKS_URL": f.jwksURL})
}

func TestWelcomeAdmissionTicket(t *testing.T) {
	f := newWelcomeFixture(t)
	ts := startWelcomeSentinel(t, f)
	path := ts.PhysicalPath()
	if path != "/"+testSentinelID {
		t.Fatalf("sentinel path %q", path)
	}

	p := admitted(t, dialBearer(t, ts, "replica1", f.ticketFor(t, path, "replica1", "*.fame.fabric")), "replica1")
	// The node declares more than its ticket grants; the ticket must win.
	p.attach("*.fame.fabric", "other.org")
	if b := p.bind("math@*.fame.fabric"); !b.OK {
		t.Fatalf("bind inside the ticket refused: %+v", b)
	}
	if b := p.bind("math@fame.fabric"); !b.OK {
		t.Fatalf("bind of the ticket's base domain refused: %+v", b)
	}
	b := p.bind("math@other.org")
	if b.OK || b.Code != envelope.CodeUnauthorized {
		t.Fatalf("bind outside the ticket: %+v", b)
	}

	t.Run("ticket for another system id", func(t *testing.T) {
		expectAuthRefused(t, dialBearer(t, ts, "replica2", f.ticketFor(t, path, "replica9", "*.fame.fabric")))
		waitLog(t, ts, "system_id does not match")
	})
	t.Run("ticket for another sentinel", func(t *testing.T) {
		expectAuthRefused(t, dialBearer(t, ts, "replica3", f.ticketFor(t, "/OtherSentinel", "replica3", "*.fame.fabric")))
		waitLog(t, ts, string(token.ReasonWrongAudience))
	})
	t.Run("OAuth2 token instead of a ticket", func(t *testing.T) {
		o := newOAuthFixture(t)
		expectAuthRefused(t, dialBearer(t, ts, "replica4", o.fetch(t, token.ScopeNodeConnect)))
	})
	t.Run("no ticket", func(t *testing.T) {
		expectAuthRefused(t, dialBearer(t, ts, "replica5", ""))
	})
	t.Run("ticket for another instance", func(t *testing.T) {
		p := admitted(t, dialBearer(t, ts, "replica6", f.ticketForInstance(t, path, "replica6", "inst-A", "*.fame.fabric")), "replica6")
		p.sendFrame(&envelope.NodeAttach{SystemID: "replica6", InstanceID: "inst-B", AcceptedLogicals: []string{"*.fame.fabric"}}, nil)
		e := p.recv()
		f, _ := e.DecodeFrame()
		if ack, ok := f.(*envelope.NodeAttachAck); !ok || ack.OK || !strings.Contains(ack.Reason, "instance") {
			t.Fatalf("want a negative NodeAttachAck naming the instance, got %s", e.Frame)
		}
		p.expectClosed(t, websocket.StatusPolicyViolation, "instance")
	})
}

// The control for the bind check above: without admission the same node may bind other.org,
// so the refusal there comes from the ticket.
func TestOpenAdmissionBindsWhatTheNodeDeclares(t *testing.T) {
	ts := startSentinel(t, map[string]string{"FAME_ADMISSION_PROFILE": "none"})
	p := dialRaw(t, ts, "plain1")
	p.attach("*.fame.fabric", "other.org")
	if b := p.bind("math@other.org"); !b.OK {
		t.Fatalf("bind refused without admission: %+v", b)
	}
}

func TestWelcomeTicketWithoutLogicalsGrantsNone(t *testing.T) {
	f := newWelcomeFixture(t)
	ts := startWelcomeSentinel(t, f)
	p := admitted(t, dialBearer(t, ts, "bare1", f.ticketFor(t, ts.PhysicalPath(), "bare1")), "bare1")
	p.attach("fame.fabric")
	if b := p.bind("math@fame.fabric"); b.OK {
		t.Fatal("a ticket with no accepted_logicals allowed a logical bind")
	}
}

// ---- profile selection ----

func TestAuthenticatorForProfiles(t *testing.T) {
	full := map[string]string{"FAME_JWT_TRUSTED_ISSUER": "https://issuer", "FAME_JWKS_URL": "https://issuer/jwks"}
	cases := []struct {
		profile string
		env     map[string]string
		wantNil bool
		wantErr error
	}{
		{"none", nil, true, nil},
		{"open", nil, true, nil},
		{"noop", nil, true, nil},
		{"", nil, true, nil},
		{"direct", full, false, nil},
		{"welcome", full, false, nil},
		{"Direct", full, false, nil},
		{"direct", nil, false, ErrAdmissionConfig},
		{"welcome", nil, false, ErrAdmissionConfig},
		{"bogus", full, false, ErrAdmissionConfig},
	}
	for _, tc := range cases {
		t.Run(tc.profile, func(t *testing.T) {
			s := &Sentinel{opts: Options{ProfileOptions: ProfileOptions{AdmissionProfile: AdmissionProfile(tc.profile)}}, path: "/S1",
				log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			a, err := authenticatorFor(s, admissionFromEnv(func(k string) string { return tc.env[k] }))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			// The comparison is on the interface value: a typed nil pointer would fail it.
			if (a == nil) != (tc.wantNil || tc.wantErr != nil) {
				t.Fatalf("authenticator = %#v", a)
			}
		})
	}
}

func TestDirectAudienceFallsBackToSentinelPath(t *testing.T) {
	a, err := newDirectAuth("/S1", admissionFromEnv(func(k string) string {
		return map[string]string{"FAME_JWT_TRUSTED_ISSUER": "https://issuer/"}[k]
	}))
	if err != nil {
		t.Fatal(err)
	}
	if a.settings.Audience != "/S1" || a.settings.JWKSURL != "https://issuer/.well-known/jwks.json" {
		t.Fatalf("settings %+v", a.settings)
	}
}

// ---- fuzz and benchmark ----

// staticDirect builds a direct authenticator over static keys, without HTTP.
func staticDirect(tb testing.TB, key *jose.SigningKey) *directAuth {
	tb.Helper()
	v, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{key.Kid: key.Public()},
		Issuer: "https://issuer", Audience: testAudience, RequiredScopes: []string{token.ScopeNodeConnect}})
	if err != nil {
		tb.Fatal(err)
	}
	return &directAuth{v: v, trustedScope: "node.trusted"}
}

func staticWelcome(tb testing.TB, key *jose.SigningKey) *welcomeAuth {
	tb.Helper()
	v, err := ticket.NewTicketVerifier(ticket.VerifierConfig{Keys: token.StaticKeys{key.Kid: key.Public()}, Issuer: testWelcomeIssuer})
	if err != nil {
		tb.Fatal(err)
	}
	return &welcomeAuth{sentinelPath: "/S1", v: v}
}

// Whatever arrives in the bearer slot must be refused with an error, never a panic or a
// principal.
func FuzzAuthenticate(f *testing.F) {
	key, err := jose.Generate()
	if err != nil {
		f.Fatal(err)
	}
	d, w := staticDirect(f, key), staticWelcome(f, key)
	valid, _ := key.Sign(&token.Claims{Issuer: "https://other", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	for _, s := range []string{"", "a.b.c", valid, valid + "x", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, a := range []Authenticator{d, w} {
			if p, err := a.Authenticate(context.Background(), tok, "n1"); err == nil {
				t.Fatalf("%T admitted %q as %+v", a, tok, p)
			}
		}
	})
}

func BenchmarkDirectAuthenticate(b *testing.B) {
	key, err := jose.Generate()
	if err != nil {
		b.Fatal(err)
	}
	d := staticDirect(b, key)
	tok, err := key.Sign(&token.Claims{Issuer: "https://issuer", Audience: token.Audience{testAudience},
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		Scope: token.ScopeNodeConnect})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Authenticate(ctx, tok, "n1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWelcomeAuthenticate(b *testing.B) {
	key, err := jose.Generate()
	if err != nil {
		b.Fatal(err)
	}
	w := staticWelcome(b, key)
	tok, _, err := (&ticket.Issuer{Key: key, Issuer: testWelcomeIssuer}).IssueAttach(ticket.Placement{
		SystemID: "n1", ParentPath: "/S1", AssignedPath: "/S1/n1", AcceptedLogicals: []string{"*.fame.fabric"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Authenticate(ctx, tok, "n1"); err != nil {
			b.Fatal(err)
		}
	}
}
