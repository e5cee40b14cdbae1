package admit

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/security"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

// fakeClock is a settable clock shared by the services and the client.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	// A whole second, so JWT second truncation does not blur the checks.
	return &fakeClock{t: time.Now().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	testSentinel = "Cb8WVCC4ML5RsFM"
	testAttach   = "ws://sentinel/fame/v1/attach/ws/downstream"
	testClient   = "client-abc"
	testSecret   = "s-secret"
	testAudience = "fame.fabric"
)

// stack is the real admission services (OAuth2, welcome, CA) behind
// httptest servers, all on one clock, with request counters.
type stack struct {
	clock     func() time.Time
	oSrv      *httptest.Server
	wSrv      *httptest.Server
	cSrv      *httptest.Server
	oKey      *jose.SigningKey
	wKey      *jose.SigningKey
	authority *ca.Authority
	trust     *x509bundle.Bundle
	tokens    atomic.Int64 // token requests
	hellos    atomic.Int64
	signs     atomic.Int64
}

type stackOpts struct {
	clock      func() time.Time // nil = time.Now
	tokenTTL   time.Duration
	ticketTTL  time.Duration
	welcomeTTL time.Duration
	certTTL    time.Duration
	tls        bool
}

// lazyHandler lets a server exist (for its URL) before its handler.
type lazyHandler struct {
	h     http.Handler
	count *atomic.Int64
}

func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		l.count.Add(1)
	}
	l.h.ServeHTTP(w, r)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	if o.clock == nil {
		o.clock = time.Now
	}
	s := &stack{clock: o.clock}
	oh, wh, ch := &lazyHandler{count: &s.tokens}, &lazyHandler{count: &s.hellos}, &lazyHandler{count: &s.signs}
	var err error
	if s.authority, err = ca.Ephemeral(); err != nil {
		t.Fatal(err)
	}
	s.authority.Now = o.clock
	if o.certTTL > 0 {
		s.authority.NodeTTL = o.certTTL
	}
	s.trust = security.NewTrustBundle([]*x509.Certificate{s.authority.Root})
	start := func(h http.Handler) *httptest.Server {
		if !o.tls {
			return httptest.NewServer(h)
		}
		srv := httptest.NewUnstartedServer(h)
		cert, err := s.authority.IssueServerCert([]string{"127.0.0.1", "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		return srv
	}
	s.oSrv, s.wSrv, s.cSrv = start(oh), start(wh), start(ch)
	t.Cleanup(func() { s.oSrv.Close(); s.wSrv.Close(); s.cSrv.Close() })

	if s.oKey, err = jose.Generate(); err != nil {
		t.Fatal(err)
	}
	if s.wKey, err = jose.Generate(); err != nil {
		t.Fatal(err)
	}
	osrv, err := oauth2.New(oauth2.Config{
		Issuer: s.oSrv.URL, Audience: "fame-fabric", Clients: []oauth2.Client{{ID: testClient, Secret: testSecret}},
		TokenTTL: o.tokenTTL, Key: s.oKey, Now: o.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	oh.h = osrv

	// A 1 ms leeway (instead of the 30 s default) so that an expired
	// credential really fails and renewal is what keeps things working.
	bearer, err := token.NewVerifier(token.Config{
		Keys: token.StaticKeys{s.oKey.Kid: s.oKey.Public()}, Issuer: s.oSrv.URL, Audience: testAudience,
		RequiredScopes: []string{DefaultScope}, Leeway: time.Millisecond, Now: o.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	wsvc, err := welcome.New(welcome.Config{
		TargetSystemID: testSentinel, AttachURL: testAttach, CAServiceURL: s.cSrv.URL + "/fame/v1/ca",
		Issuer: s.welcomeIssuer(), TicketTTL: o.ticketTTL, WelcomeTTL: o.welcomeTTL,
		Verifier: bearer, Key: s.wKey, Now: o.clock, Logger: quietLogger(),
		Grants: []welcome.ClientGrant{{Subject: testClient, SystemIDs: []string{"*"}, Logicals: []string{"*.fame.fabric"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wh.h = wsvc

	grants, err := token.NewVerifier(token.Config{
		Keys: token.StaticKeys{s.wKey.Kid: s.wKey.Public()}, Issuer: s.welcomeIssuer(), Audience: ticket.AudienceCA,
		Leeway: time.Millisecond, Now: o.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	csrv, err := ca.NewServer(s.authority, grants, false, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ch.h = csrv
	return s
}

func (s *stack) welcomeIssuer() string { return s.wSrv.URL + "/fame/welcome" }

func (s *stack) clientCredentials() ClientCredentials {
	return ClientCredentials{TokenURL: s.oSrv.URL + oauth2.TokenPath, ClientID: testClient, ClientSecret: testSecret,
		Scope: DefaultScope, Audience: testAudience, HTTPClient: s.oSrv.Client(), Now: s.clock}
}

// verifyAccess checks an access token as the welcome service does.
func (s *stack) verifyAccess(t testing.TB, tok string) {
	t.Helper()
	v, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{s.oKey.Kid: s.oKey.Public()}, Issuer: s.oSrv.URL,
		Audience: testAudience, RequiredScopes: []string{DefaultScope}, Leeway: time.Millisecond, Now: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("access token at %s: %v", s.clock().Format(time.TimeOnly), err)
	}
}

// verifyTicket checks an attach ticket as the sentinel does.
func (s *stack) verifyTicket(t testing.TB, tok, systemID string) *ticket.Ticket {
	t.Helper()
	v, err := ticket.NewTicketVerifier(ticket.VerifierConfig{Keys: token.StaticKeys{s.wKey.Kid: s.wKey.Public()},
		Issuer: s.welcomeIssuer(), Leeway: time.Millisecond, Now: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := v.Verify(tok, ticket.AttachInfo{SystemID: systemID, SentinelPath: "/" + testSentinel})
	if err != nil {
		t.Fatalf("attach ticket at %s: %v", s.clock().Format(time.TimeOnly), err)
	}
	return tk
}
