package node_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
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

const (
	stackSentinelID = "Cb8WVCC4ML5RsFM"
	stackClient     = "client-abc123" // the math client's OAuth2 client: random ids, no logicals
	stackSecret     = "s-secret123"
	stackReplicas   = "math-replicas" // the replicas' OAuth2 client: ids math-*, the math domain
	stackRepSecret  = "s-replicas456"
	stackAudience   = "fame.fabric"
	stackIssuer     = "https://welcome/fame/welcome"
)

// fullStack is the reference example's strict-overlay deployment in one process: the real
// OAuth2, welcome and CA handlers and a real sentinel (welcome admission, strict-overlay,
// AFT stickiness at level strict), each behind an httptest server, wired with the same
// variables as the separate processes.
type fullStack struct {
	sentinel *sentinel.Sentinel
	caRoot   string            // PEM, FAME_CA_CERTS of every party
	nodeEnv  map[string]string // the math client's environment
	repEnv   map[string]string // the replicas' (their own OAuth2 client)
	welcome  *welcome.Service
	tokens   atomic.Int64 // POSTs to each service
	hellos   atomic.Int64
	signs    atomic.Int64
}

// lazy lets a server exist (for its URL) before its handler, and counts POSTs.
type lazy struct {
	mu    sync.Mutex
	h     http.Handler
	posts *atomic.Int64
}

func (l *lazy) set(h http.Handler) { l.mu.Lock(); l.h = h; l.mu.Unlock() }

func (l *lazy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && l.posts != nil {
		l.posts.Add(1)
	}
	l.mu.Lock()
	h := l.h
	l.mu.Unlock()
	h.ServeHTTP(w, r)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newFullStack starts the stack; ttl (0 = the services' defaults) is the lifetime of access
// tokens, tickets, welcomes and node certificates.
// With useTLS every service and the sentinel serve HTTPS/WSS with certificates from the
// stack's CA, which the nodes trust only through FAME_CA_CERTS.
func newFullStack(t *testing.T, ttl time.Duration, useTLS bool) *fullStack {
	t.Helper()
	fs := &fullStack{}
	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	start := func(h http.Handler) *httptest.Server {
		if !useTLS {
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
	oh, wh, ch, sh := &lazy{posts: &fs.tokens}, &lazy{posts: &fs.hellos}, &lazy{posts: &fs.signs}, &lazy{}
	oSrv, wSrv, cSrv, sSrv := start(oh), start(wh), start(ch), start(sh)
	// The sentinel reads the welcome JWKS over plain HTTP, as in the compose stack
	// (http://welcome:8090): only the node-facing endpoints use TLS.
	wInternal := httptest.NewServer(wh)
	t.Cleanup(func() { oSrv.Close(); wSrv.Close(); cSrv.Close(); wInternal.Close() })
	if ttl > 0 {
		auth.NodeTTL = ttl
	}
	fs.caRoot = string(auth.RootPEM())

	oKey, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	osrv, err := oauth2.New(oauth2.Config{Issuer: oSrv.URL, Audience: stackAudience,
		Clients:  []oauth2.Client{{ID: stackClient, Secret: stackSecret}, {ID: stackReplicas, Secret: stackRepSecret}},
		TokenTTL: ttl, Key: oKey})
	if err != nil {
		t.Fatal(err)
	}
	oh.set(osrv)

	wKey, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{oKey.Kid: oKey.Public()}, Issuer: oSrv.URL,
		Audience: stackAudience, RequiredScopes: []string{"node.connect"}, Leeway: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wsURL := "ws" + strings.TrimPrefix(sSrv.URL, "http") + "/fame/v1/attach/ws/downstream"
	wsvc, err := welcome.New(welcome.Config{TargetSystemID: stackSentinelID, AttachURL: wsURL,
		CAServiceURL: cSrv.URL + "/fame/v1/ca", Issuer: stackIssuer, TicketTTL: ttl, WelcomeTTL: ttl,
		Verifier: bearer, Key: wKey, Logger: quiet(), Grants: []welcome.ClientGrant{
			{Subject: stackReplicas, SystemIDs: []string{"math-*"}, Logicals: []string{"*.fame.fabric", "fame.fabric"}},
			{Subject: stackClient, SystemIDs: []string{"*"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	wh.set(wsvc)
	fs.welcome = wsvc

	grants, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{wKey.Kid: wKey.Public()}, Issuer: stackIssuer,
		Audience: ticket.AudienceCA, Leeway: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	csrv, err := ca.NewServer(auth, grants, false, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ch.set(csrv)

	// The sentinel reads its admission and trust settings from the process environment,
	// exactly as `fame sentinel` does.
	senv := map[string]string{
		"FAME_NODE_ID": stackSentinelID, "FAME_SECURITY_PROFILE": "strict-overlay",
		"FAME_DEFAULT_ENCRYPTION_LEVEL": "channel", "FAME_ADMISSION_PROFILE": "welcome",
		"FAME_STICKINESS_LEVEL": "strict", "FAME_JWT_AUDIENCE": stackAudience,
		"FAME_JWT_TRUSTED_ISSUER": stackIssuer, "FAME_JWKS_URL": wInternal.URL + welcome.JWKSPath,
		"FAME_CA_CERTS": fs.caRoot,
	}
	for k, v := range senv {
		t.Setenv(k, v)
	}
	opts, err := sentinel.LoadOptions("", func(k string) (string, bool) { v, ok := senv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if fs.sentinel, err = sentinel.New(opts, sentinel.WithLogger(quiet())); err != nil {
		t.Fatal(err)
	}
	sh.set(fs.sentinel.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs.sentinel.Shutdown(ctx)
		sSrv.Close()
	})

	fs.nodeEnv = map[string]string{
		"FAME_ADMISSION_PROFILE":       "welcome",
		"FAME_ADMISSION_SERVICE_URL":   wSrv.URL + welcome.HelloPath,
		"FAME_ADMISSION_TOKEN_URL":     oSrv.URL + oauth2.TokenPath,
		"FAME_ADMISSION_CLIENT_ID":     stackClient,
		"FAME_ADMISSION_CLIENT_SECRET": stackSecret,
		"FAME_JWT_AUDIENCE":            stackAudience,
		"FAME_CA_CERTS":                fs.caRoot,
	}
	fs.repEnv = map[string]string{}
	for k, v := range fs.nodeEnv {
		fs.repEnv[k] = v
	}
	fs.repEnv["FAME_ADMISSION_CLIENT_ID"], fs.repEnv["FAME_ADMISSION_CLIENT_SECRET"] = stackReplicas, stackRepSecret
	return fs
}

// nodeConfig is a strict-overlay node admitted by welcome, configured only through its
// environment as the math programs are.
func (fs *fullStack) nodeConfig(logicals []string, show io.Writer) node.Config {
	env := fs.nodeEnv
	return node.Config{
		SecurityProfile: "strict-overlay", EncryptionLevel: "channel", RequestedLogicals: logicals,
		AdmissionSettings: admitEnv(env), Logger: quiet(),
		ShowEnvelopes: show != nil, ShowWriter: show,
	}
}

// startReplica attaches a math replica (pool *.fame.fabric) answering whoami with name.
func (fs *fullStack) startReplica(t *testing.T, ctx context.Context, name string, show io.Writer) *node.Node {
	t.Helper()
	cfg := fs.nodeConfig([]string{"*.fame.fabric"}, show)
	env := fs.repEnv
	cfg.AdmissionSettings = admitEnv(env)
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
