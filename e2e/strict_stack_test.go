package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/sentinel"
)

// strictStack is the reference example's strict-overlay deployment in one process (as the
// node package's full-stack test builds it): the real OAuth2, welcome and CA handlers and a
// sentinel with welcome admission, strict-overlay and AFT stickiness at level strict. Every
// node is admitted by welcome and holds an SVID from the CA.
type strictStack struct {
	sentinel *sentinel.Sentinel
	url      string // the sentinel's HTTP base
	nodeEnv  map[string]string
}

const (
	strictSentinelID = "Cb8WVCC4ML5RsFM"
	strictClient     = "client-abc123"
	strictSecret     = "s-secret123"
	strictAudience   = "fame.fabric"
	strictIssuer     = "https://welcome/fame/welcome"
)

// lazyHandler lets a server exist (for its URL) before its handler.
type lazyHandler struct {
	mu sync.Mutex
	h  http.Handler
}

func (l *lazyHandler) set(h http.Handler) { l.mu.Lock(); l.h = h; l.mu.Unlock() }
func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	h := l.h
	l.mu.Unlock()
	h.ServeHTTP(w, r)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newStrictStack(t *testing.T) *strictStack {
	t.Helper()
	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	oh, wh, ch, sh := &lazyHandler{}, &lazyHandler{}, &lazyHandler{}, &lazyHandler{}
	oSrv, wSrv, cSrv, sSrv := httptest.NewServer(oh), httptest.NewServer(wh), httptest.NewServer(ch), httptest.NewServer(sh)
	t.Cleanup(func() { oSrv.Close(); wSrv.Close(); cSrv.Close() })
	root := string(auth.RootPEM())

	oKey, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	osrv, err := oauth2.New(oauth2.Config{Issuer: oSrv.URL, Audience: strictAudience,
		Clients: []oauth2.Client{{ID: strictClient, Secret: strictSecret}}, Key: oKey})
	if err != nil {
		t.Fatal(err)
	}
	oh.set(osrv)
	wKey, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{oKey.Kid: oKey.Public()}, Issuer: oSrv.URL,
		Audience: strictAudience, RequiredScopes: []string{"node.connect"}, Leeway: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wsURL := "ws" + strings.TrimPrefix(sSrv.URL, "http") + "/fame/v1/attach/ws/downstream"
	wsvc, err := welcome.New(welcome.Config{TargetSystemID: strictSentinelID, AttachURL: wsURL,
		CAServiceURL: cSrv.URL + "/fame/v1/ca", Issuer: strictIssuer,
		Verifier: bearer, Key: wKey, Logger: discard(),
		// One OAuth2 client for every node, granted the math domain: the attackers in these tests
		// hold valid credentials, so what is checked is the sentinel's own enforcement.
		Grants: []welcome.ClientGrant{{Subject: strictClient, SystemIDs: []string{"*"}, Logicals: []string{"*.fame.fabric", "fame.fabric"}}}})
	if err != nil {
		t.Fatal(err)
	}
	wh.set(wsvc)
	grants, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{wKey.Kid: wKey.Public()}, Issuer: strictIssuer,
		Audience: ticket.AudienceCA, Leeway: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	csrv, err := ca.NewServer(auth, grants, false, discard())
	if err != nil {
		t.Fatal(err)
	}
	ch.set(csrv)

	senv := map[string]string{
		"FAME_NODE_ID": strictSentinelID, "FAME_SECURITY_PROFILE": "strict-overlay",
		"FAME_DEFAULT_ENCRYPTION_LEVEL": "channel", "FAME_ADMISSION_PROFILE": "welcome",
		"FAME_STICKINESS_LEVEL": "strict", "FAME_JWT_AUDIENCE": strictAudience,
		"FAME_JWT_TRUSTED_ISSUER": strictIssuer, "FAME_JWKS_URL": wSrv.URL + welcome.JWKSPath,
		"FAME_CA_CERTS": root,
	}
	opts, err := sentinel.LoadOptions("", func(k string) (string, bool) { v, ok := senv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	st := &strictStack{url: sSrv.URL}
	if st.sentinel, err = sentinel.New(opts, sentinel.WithLogger(discard())); err != nil {
		t.Fatal(err)
	}
	sh.set(st.sentinel.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st.sentinel.Shutdown(ctx)
		sSrv.Close()
	})
	st.nodeEnv = map[string]string{
		"FAME_ADMISSION_PROFILE":       "welcome",
		"FAME_ADMISSION_SERVICE_URL":   wSrv.URL + welcome.HelloPath,
		"FAME_ADMISSION_TOKEN_URL":     oSrv.URL + oauth2.TokenPath,
		"FAME_ADMISSION_CLIENT_ID":     strictClient,
		"FAME_ADMISSION_CLIENT_SECRET": strictSecret,
		"FAME_JWT_AUDIENCE":            strictAudience,
		"FAME_CA_CERTS":                root,
	}
	return st
}

func (st *strictStack) nodeConfig(id string, logicals ...string) node.Config {
	env := st.nodeEnv
	return node.Config{SystemID: id, SecurityProfile: "strict-overlay", EncryptionLevel: "channel",
		RequestedLogicals: logicals, AdmissionSettings: admitEnv(env), Logger: discard(),
		CallTimeout: 10 * time.Second}
}

func (st *strictStack) connect(t *testing.T, cfg node.Config) (*node.Node, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n, err := node.Connect(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { _ = n.Close() })
	}
	return n, err
}

func (st *strictStack) replica(t *testing.T, name string) *node.Node {
	t.Helper()
	n, err := st.connect(t, st.nodeConfig(name, "*.fame.fabric"))
	if err != nil {
		t.Fatalf("replica %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.Serve(ctx, mathagent.Address, mathagent.Ops(name)); err != nil {
		t.Fatalf("replica %s serve: %v", name, err)
	}
	return n
}

// metric reads one sample of the sentinel's /metrics (0 when absent).
func (st *strictStack) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	f := &fabric{addr: strings.TrimPrefix(st.url, "http://"), env: map[string]string{}}
	return f.metric(t, name, labels...)
}
