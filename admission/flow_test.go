package admission_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/security"
)

// grantView is the part of a connection grant the flow needs.
type grantView struct {
	Purpose, URL string
	Auth         struct {
		TokenProvider struct{ Token string } `json:"token_provider"`
	}
}

// lazy lets a test server exist (for its URL) before its handler does.
type lazy struct{ h http.Handler }

func (l *lazy) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.h.ServeHTTP(w, r) }

func postJSON(t *testing.T, u, bearer string, body []byte) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

// The whole admission flow across real HTTP: client credentials → token →
// hello → welcome grants → CSR → SVID → attach-ticket check.
func TestAdmissionFlow(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	oh, wh, ch := &lazy{}, &lazy{}, &lazy{}
	oSrv, wSrv, cSrv := httptest.NewServer(oh), httptest.NewServer(wh), httptest.NewServer(ch)
	defer oSrv.Close()
	defer wSrv.Close()
	defer cSrv.Close()
	const sentinel = "Cb8WVCC4ML5RsFM"
	env := map[string]string{
		"FAME_JWT_ISSUER": oSrv.URL, "FAME_OAUTH2_CLIENT_ID": "c1", "FAME_OAUTH2_CLIENT_SECRET": "s1",
		"FAME_JWT_AUDIENCE": "fame.fabric", "FAME_JWT_TRUSTED_ISSUER": oSrv.URL,
		"FAME_WELCOME_TARGET_SYSTEM_ID": sentinel, "FAME_WELCOME_ATTACH_URL": "ws://sentinel/fame/v1/attach/ws/downstream",
		"FAME_CA_SERVICE_URL": cSrv.URL + "/fame/v1/ca", "FAME_WELCOME_ISSUER": wSrv.URL + "/fame/welcome",
		"FAME_CA_TRUSTED_ISSUER": wSrv.URL + "/fame/welcome", "FAME_CA_DIR": t.TempDir(),
		// Two clients, as in the compose stack: c1 is the replicas', c2 a
		// plain client with random ids and no logicals.
		"FAME_OAUTH2_CLIENTS": "c2:s2",
		"FAME_WELCOME_GRANTS": "sub=c1 system_ids=r1node,r2node logicals=*.fame.fabric; sub=c2 system_ids=*",
	}
	getenv := func(k string) string { return env[k] }

	ocfg, err := oauth2.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if oh.h, err = oauth2.New(ocfg); err != nil {
		t.Fatal(err)
	}
	wcfg, err := welcome.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	wcfg.Logger = quiet
	if wh.h, err = welcome.New(wcfg); err != nil {
		t.Fatal(err)
	}
	ccfg, err := ca.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	caSrv, authority, err := ca.New(ccfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ch.h = caSrv

	// 1. client credentials
	accessToken := func(id, secret string) string {
		resp, err := http.PostForm(oSrv.URL+oauth2.TokenPath, url.Values{"grant_type": {"client_credentials"},
			"client_id": {id}, "client_secret": {secret}, "scope": {"node.connect"}, "audience": {"fame.fabric"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		return tr.AccessToken
	}
	replicaTok, clientTok := accessToken("c1", "s1"), accessToken("c2", "s2")

	// 2. hello → welcome; the plain client's token cannot get the replica's
	// placement nor its logicals.
	for _, h := range []*envelope.NodeHello{
		{SystemID: "r1node", InstanceID: "inst1"},
		{SystemID: "c-123", InstanceID: "inst1", Logicals: []string{"*.fame.fabric"}},
	} {
		e, _ := envelope.New(h)
		b, _ := e.Marshal()
		req, _ := http.NewRequest(http.MethodPost, wSrv.URL+welcome.HelloPath, strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer "+clientTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(rb), "_not_granted") {
			t.Fatalf("client hello %+v: %d %s", h, resp.StatusCode, rb)
		}
	}
	hello, _ := envelope.New(&envelope.NodeHello{SystemID: "r1node", InstanceID: "inst1", Logicals: []string{"*.fame.fabric"}})
	hb, _ := hello.Marshal()
	wb := postJSON(t, wSrv.URL+welcome.HelloPath, replicaTok, hb)
	we, err := envelope.Decode(wb)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := we.DecodeFrame()
	w := f.(*envelope.NodeWelcome)
	grants := map[string]grantView{}
	for _, raw := range w.ConnectionGrants {
		var g grantView
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		grants[g.Purpose] = g
	}

	// 3. CSR → SVID with the CA grant
	_, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, nodeKey)
	body, _ := json.Marshal(ca.SignRequest{CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		RequesterID: "r1node", PhysicalPath: w.AssignedPath, Logicals: w.AcceptedLogicals})
	cb := postJSON(t, grants[welcome.PurposeCASign].URL+"/sign", grants[welcome.PurposeCASign].Auth.TokenProvider.Token, body)
	var sr ca.SignResponse
	_ = json.Unmarshal(cb, &sr)
	chain, err := ca.ParseCertsPEM([]byte(sr.CertificateChainPEM))
	if err != nil {
		t.Fatal(err)
	}
	id, err := security.VerifyNodeSVID(chain, security.NewTrustBundle([]*x509.Certificate{authority.Root}), time.Now())
	if err != nil || id.SID != envelope.SecureDigest("/"+sentinel+"/r1node") {
		t.Fatalf("SVID: %+v %v", id, err)
	}

	// 4. the sentinel's attach check, keys from the welcome JWKS
	tv, err := ticket.NewTicketVerifier(ticket.VerifierConfig{
		Keys:   token.NewJWKSClient(wSrv.URL+welcome.JWKSPath, token.JWKSOptions{}),
		Issuer: wSrv.URL + "/fame/welcome", Replay: token.NewReplayGuard(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	attachTok := grants[welcome.PurposeAttach].Auth.TokenProvider.Token
	if _, err := tv.Verify(attachTok, ticket.AttachInfo{SystemID: "someone-else", InstanceID: "inst1", SentinelPath: "/" + sentinel}); err == nil {
		t.Fatal("ticket accepted for another system id")
	}
	tk, err := tv.Verify(attachTok, ticket.AttachInfo{SystemID: "r1node", InstanceID: "inst1", SentinelPath: "/" + sentinel})
	if err != nil {
		t.Fatalf("attach refused: %v", err)
	}
	if !tk.AllowsLogical("math@*.fame.fabric") || tk.AllowsLogical("math@other.org") {
		t.Fatal("AllowsLogical does not follow the accepted logicals")
	}
	if _, err := tv.Verify(attachTok, ticket.AttachInfo{SystemID: "r1node", InstanceID: "inst1", SentinelPath: "/" + sentinel}); token.ReasonOf(err) != token.ReasonReplayed {
		t.Fatalf("replayed ticket: %v", err)
	}
}
