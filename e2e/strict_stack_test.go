package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
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
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/sentinel"
)

// strictStack is the reference example's strict-overlay deployment in one process: the real
// OAuth2, welcome and CA handlers, each behind an httptest server, and a real sentinel
// (welcome admission, strict-overlay, AFT stickiness at level strict) wired with the same
// variables as the separate processes. Every node is admitted by welcome and holds an SVID
// from the CA.
//
// Three OAuth2 clients hold three welcome grants: nodeEnv's may take any system id and the
// math domain (the attack tests' attackers hold valid credentials, so what is checked is the
// sentinel's own enforcement); clientEnv and repEnv are the reference example's math client
// (any id, no logicals) and replicas (ids math-*, the math domain).
type strictStack struct {
	sentinel  *sentinel.Sentinel // nil when proc runs it
	proc      *sentinelProc
	url       string            // the sentinel's HTTP(S) base
	caRoot    string            // PEM, FAME_CA_CERTS of every party
	nodeEnv   map[string]string // the wide credential
	clientEnv map[string]string // the math client's environment
	repEnv    map[string]string // the math replicas'
	welcome   *welcome.Service
	tokens    atomic.Int64 // POSTs to each service
	hellos    atomic.Int64
	signs     atomic.Int64
}

// stackOptions shape a strictStack; the zero value is the attack tests' stack.
type stackOptions struct {
	// ttl (0 = the services' defaults) is the lifetime of access tokens, tickets, welcomes
	// and node certificates.
	ttl time.Duration
	// tls: every service and the sentinel serve HTTPS/WSS with certificates from the stack's
	// CA, which the nodes trust only through FAME_CA_CERTS.
	tls bool
	// drainTimeout (0 = the default) is the sentinel's FAME_DRAIN_TIMEOUT.
	drainTimeout time.Duration
	// procEnv, when not nil, runs the sentinel as a `fame sentinel` process (st.proc) with
	// these variables added to the stack's, instead of in this process (plain HTTP only).
	procEnv map[string]string
}

const (
	strictSentinelID = "Cb8WVCC4ML5RsFM"
	strictNode       = "node-any789" // the wide credential
	strictNodeSecret = "s-any789"
	strictClient     = "client-abc123" // the math client's OAuth2 client: random ids, no logicals
	strictSecret     = "s-secret123"
	strictReplicas   = "math-replicas" // the replicas' OAuth2 client: ids math-*, the math domain
	strictRepSecret  = "s-replicas456"
	strictAudience   = "fame.fabric"
	strictIssuer     = "https://welcome/fame/welcome"
)

// lazyHandler lets a server exist (for its URL) before its handler, and counts POSTs.
type lazyHandler struct {
	mu    sync.Mutex
	h     http.Handler
	posts *atomic.Int64 // nil: not counted
}

func (l *lazyHandler) set(h http.Handler) { l.mu.Lock(); l.h = h; l.mu.Unlock() }
func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && l.posts != nil {
		l.posts.Add(1)
	}
	l.mu.Lock()
	h := l.h
	l.mu.Unlock()
	h.ServeHTTP(w, r)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newStrictStack starts the attack tests' stack (plain HTTP, default lifetimes).
func newStrictStack(t *testing.T) *strictStack { return newStack(t, stackOptions{}) }

func newStack(t *testing.T, o stackOptions) *strictStack {
	t.Helper()
	st := &strictStack{}
	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	start := func(h http.Handler) *httptest.Server {
		if !o.tls {
			return httptest.NewServer(h)
		}
		srv := httptest.NewUnstartedServer(h)
		cert, err := auth.IssueServerCert([]string{"127.0.0.1", "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		return srv
	}
	oh, wh, ch, sh := &lazyHandler{posts: &st.tokens}, &lazyHandler{posts: &st.hellos}, &lazyHandler{posts: &st.signs}, &lazyHandler{}
	oSrv, wSrv, cSrv, sSrv := start(oh), start(wh), start(ch), start(sh)
	t.Cleanup(func() { oSrv.Close(); wSrv.Close(); cSrv.Close() })
	// The sentinel reads the welcome JWKS over plain HTTP, as in the compose stack
	// (http://welcome:8090): only the node-facing endpoints use TLS.
	jwksBase := wSrv.URL
	if o.tls {
		wInternal := httptest.NewServer(wh)
		t.Cleanup(wInternal.Close)
		jwksBase = wInternal.URL
	}
	if o.ttl > 0 {
		auth.NodeTTL = o.ttl
	}
	st.caRoot = string(auth.RootPEM())

	oKey, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	osrv, err := oauth2.New(oauth2.Config{Issuer: oSrv.URL, Audience: strictAudience,
		Clients: []oauth2.Client{{ID: strictNode, Secret: strictNodeSecret}, {ID: strictClient, Secret: strictSecret},
			{ID: strictReplicas, Secret: strictRepSecret}},
		TokenTTL: o.ttl, Key: oKey})
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
	senv := map[string]string{
		"FAME_NODE_ID": strictSentinelID, "FAME_SECURITY_PROFILE": "strict-overlay",
		"FAME_DEFAULT_ENCRYPTION_LEVEL": "channel", "FAME_ADMISSION_PROFILE": "welcome",
		"FAME_STICKINESS_LEVEL": "strict", "FAME_JWT_AUDIENCE": strictAudience,
		"FAME_JWT_TRUSTED_ISSUER": strictIssuer, "FAME_JWKS_URL": jwksBase + welcome.JWKSPath,
		"FAME_CA_CERTS": st.caRoot,
	}
	if o.drainTimeout > 0 {
		senv["FAME_DRAIN_TIMEOUT"] = o.drainTimeout.String()
	}
	wsURL := "ws" + strings.TrimPrefix(sSrv.URL, "http") + "/fame/v1/attach/ws/downstream"
	if o.procEnv != nil {
		// As in the compose stack, the sentinel sees the welcome hello URL (its gateway admits
		// callers there).
		env := maps.Clone(senv)
		env["FAME_ADMISSION_SERVICE_URL"] = wSrv.URL + welcome.HelloPath
		maps.Copy(env, o.procEnv)
		t.Cleanup(sSrv.Close)
		st.proc = startFameSentinel(t, env)
		wsURL = "ws://" + st.proc.fabric.addr + "/fame/v1/attach/ws/downstream"
	}
	wsvc, err := welcome.New(welcome.Config{TargetSystemID: strictSentinelID, AttachURL: wsURL,
		CAServiceURL: cSrv.URL + "/fame/v1/ca", Issuer: strictIssuer, TicketTTL: o.ttl, WelcomeTTL: o.ttl,
		Verifier: bearer, Key: wKey, Logger: discard(), Grants: []welcome.ClientGrant{
			{Subject: strictNode, SystemIDs: []string{"*"}, Logicals: []string{"*.fame.fabric", "fame.fabric"}},
			{Subject: strictReplicas, SystemIDs: []string{"math-*"}, Logicals: []string{"*.fame.fabric", "fame.fabric"}},
			{Subject: strictClient, SystemIDs: []string{"*"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	wh.set(wsvc)
	st.welcome = wsvc
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

	if st.proc != nil {
		st.url = "http://" + st.proc.fabric.addr
	} else {
		st.startInProcess(t, senv, sSrv, sh)
	}
	credential := func(id, secret string) map[string]string {
		return map[string]string{
			"FAME_ADMISSION_PROFILE":       "welcome",
			"FAME_ADMISSION_SERVICE_URL":   wSrv.URL + welcome.HelloPath,
			"FAME_ADMISSION_TOKEN_URL":     oSrv.URL + oauth2.TokenPath,
			"FAME_ADMISSION_CLIENT_ID":     id,
			"FAME_ADMISSION_CLIENT_SECRET": secret,
			"FAME_JWT_AUDIENCE":            strictAudience,
			"FAME_CA_CERTS":                st.caRoot,
		}
	}
	st.nodeEnv = credential(strictNode, strictNodeSecret)
	st.clientEnv = credential(strictClient, strictSecret)
	st.repEnv = credential(strictReplicas, strictRepSecret)
	return st
}

// startInProcess runs the stack's sentinel in this process behind sSrv.
func (st *strictStack) startInProcess(t *testing.T, senv map[string]string, sSrv *httptest.Server, sh *lazyHandler) {
	t.Helper()
	opts, err := sentinel.LoadOptions("", func(k string) (string, bool) { v, ok := senv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	st.url = sSrv.URL
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
}

// nodeConfig is a strict-overlay node with the wide credential.
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

// replica attaches a math pool replica with the wide credential, answering whoami with name.
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

// clientConfig is the reference example's math client (random system id, client
// credential), configured only through its environment as the math programs are.
func (st *strictStack) clientConfig(logicals []string, show io.Writer) node.Config {
	env := st.clientEnv
	return node.Config{
		SecurityProfile: "strict-overlay", EncryptionLevel: "channel", RequestedLogicals: logicals,
		AdmissionSettings: admitEnv(env), Logger: discard(),
		ShowEnvelopes: show != nil, ShowWriter: show,
	}
}

// mathReplica attaches the reference example's math replica math-<name> (pool
// *.fame.fabric, replica credential) answering whoami with name.
func (st *strictStack) mathReplica(t *testing.T, ctx context.Context, name string, show io.Writer) *node.Node {
	t.Helper()
	cfg := st.clientConfig([]string{"*.fame.fabric"}, show)
	cfg.AdmissionSettings = admitEnv(st.repEnv)
	cfg.SystemID = "math-" + name
	n, err := node.Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("replica %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Serve(ctx, mathagent.Address, mathagent.Ops(name)); err != nil {
		t.Fatalf("replica %s serve: %v", name, err)
	}
	return n
}

// metric reads one sample of the sentinel's /metrics (0 when absent; plain-HTTP stacks only).
func (st *strictStack) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	f := &fabric{addr: strings.TrimPrefix(st.url, "http://"), env: map[string]string{}}
	return f.metric(t, name, labels...)
}
