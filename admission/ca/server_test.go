package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"

	"github.com/fame-go/fame/security"
)

const welcomeIss = "https://welcome/fame/welcome"

type caFixture struct {
	srv    *httptest.Server
	ca     *Authority
	issuer *ticket.Issuer
}

func newCAFixture(t *testing.T) *caFixture {
	t.Helper()
	a, err := InitCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := jose.Generate()
	v, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{wk.Kid: wk.Public()}, Issuer: welcomeIss, Audience: ticket.AudienceCA})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(a, v, false, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &caFixture{srv: srv, ca: a, issuer: &ticket.Issuer{Key: wk, Issuer: welcomeIss}}
}

func (f *caFixture) post(t *testing.T, body, bearer string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+SignPath, strings.NewReader(body))
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
	return resp.StatusCode, b
}

func signBody(csr, requester, path string, logicals []string) string {
	b, _ := json.Marshal(SignRequest{CSRPEM: csr, RequesterID: requester, PhysicalPath: path, Logicals: logicals})
	return string(b)
}

func TestSignEndpoint(t *testing.T) {
	f := newCAFixture(t)
	pl := ticket.Placement{SystemID: "r1node", InstanceID: "i", ParentPath: "/Cb8WVCC4ML5RsFM",
		AssignedPath: "/Cb8WVCC4ML5RsFM/r1node", AcceptedLogicals: []string{"*.fame.fabric"}}
	grant, _, _ := f.issuer.IssueCA(pl)
	attachTicket, _, _ := f.issuer.IssueAttach(pl)
	old := *f.issuer
	old.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	expired, _, _ := old.IssueCA(pl)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := csrPEM(t, edKey(t))

	cases := []struct {
		name   string
		body   string
		bearer string
		status int
		code   string
		sid    string
	}{
		{"full body", signBody(csr, "r1node", "/Cb8WVCC4ML5RsFM/r1node", []string{"*.fame.fabric"}), grant, 200, "", "3kK8jbqewlvFx9gZDYtrXM"},
		{"identity from grant", signBody(csr, "r1node", "", nil), grant, 200, "", "3kK8jbqewlvFx9gZDYtrXM"},
		{"ECDSA CSR", signBody(csrPEM(t, ec), "r1node", "", nil), grant, 200, "", "3kK8jbqewlvFx9gZDYtrXM"},
		{"other requester", signBody(csr, "intruder", "", nil), grant, 403, CodeRequesterNotGranted, ""},
		{"other sid path", signBody(csr, "r1node", "/Cb8WVCC4ML5RsFM/other", nil), grant, 403, CodePathNotGranted, ""},
		{"logical not granted", signBody(csr, "r1node", "", []string{"*.evil.org"}), grant, 403, CodeLogicalNotGranted, ""},
		{"no token", signBody(csr, "r1node", "", nil), "", 401, "missing_token", ""},
		{"expired grant", signBody(csr, "r1node", "", nil), expired, 401, "expired", ""},
		{"attach ticket as grant", signBody(csr, "r1node", "", nil), attachTicket, 401, "wrong_audience", ""},
		{"tampered grant", signBody(csr, "r1node", "", nil), grant[:len(grant)-2] + "AA", 401, "bad_signature", ""},
		{"not a CSR", signBody("hello", "r1node", "", nil), grant, 400, "invalid_request", ""},
		{"not JSON", "{", grant, 400, "invalid_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, b := f.post(t, tc.body, tc.bearer)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, b, tc.status)
			}
			if tc.status != 200 {
				var e struct{ Detail, Code string }
				if json.Unmarshal(b, &e) != nil || e.Code != tc.code || e.Detail == "" {
					t.Fatalf("error body %s, want code %s", b, tc.code)
				}
				return
			}
			var r SignResponse
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			chain, err := ParseCertsPEM([]byte(r.CertificateChainPEM))
			if err != nil || len(chain) != 2 {
				t.Fatalf("chain: %d certs, %v", len(chain), err)
			}
			leaf, _ := ParseCertsPEM([]byte(r.CertificatePEM))
			if !leaf[0].Equal(chain[0]) {
				t.Fatal("certificate_pem is not the chain's first certificate")
			}
			id, err := security.VerifyNodeSVID(chain, security.NewTrustBundle([]*x509.Certificate{f.ca.Root}), time.Now())
			if err != nil || id.SID != tc.sid {
				t.Fatalf("issued chain: %+v %v", id, err)
			}
			if _, err := time.Parse(time.RFC3339, r.ExpiresAt); err != nil || !strings.HasSuffix(r.ExpiresAt, "+00:00") {
				t.Fatalf("expires_at %q", r.ExpiresAt)
			}
		})
	}
}

func TestTrustBundleAndHealth(t *testing.T) {
	f := newCAFixture(t)
	resp, err := http.Get(f.srv.URL + TrustBundlePath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tb trustBundle
	if err := json.Unmarshal(body, &tb); err != nil || len(tb.Roots) != 1 || tb.Version == 0 {
		t.Fatalf("bundle %s: %v", body, err)
	}
	roots, err := ParseCertsPEM([]byte(tb.Roots[0].PEM))
	if err != nil || !roots[0].Equal(f.ca.Root) {
		t.Fatal("bundle root differs from the CA root")
	}
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+TrustBundlePath, nil)
	req.Header.Set("If-None-Match", etag)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if etag == "" || resp2.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: etag %q status %d", etag, resp2.StatusCode)
	}
	resp3, err := http.Get(f.srv.URL + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(resp3.Body)
	resp3.Body.Close()
	if !bytes.Contains(hb, []byte(`"healthy"`)) {
		t.Fatalf("health = %s", hb)
	}
}

func TestNewServerNeedsAuth(t *testing.T) {
	a, _ := Ephemeral()
	if _, err := NewServer(a, nil, false, quiet); err == nil {
		t.Fatal("CA without grant verification accepted")
	}
}

func TestConfigFromEnvRootOnly(t *testing.T) {
	rootKeyDir := t.TempDir()
	a, err := InitCA(rootKeyDir)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FAME_CA_CERT_FILE": rootKeyDir + "/" + RootCertFile,
		"FAME_CA_KEY_FILE":  rootKeyDir + "/" + RootKeyFile,
		"FAME_CA_CERT_TTL":  "3600",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.GrantJWKSURL != welcomeIss+"/.well-known/jwks.json" || c.Port != "8091" {
		t.Fatalf("config = %+v", c)
	}
	s, got, err := New(c, quiet)
	if err != nil || s == nil {
		t.Fatal(err)
	}
	// Only the root configured: leaves are signed by the root, chain = leaf.
	if !got.Signer.Equal(a.Root) || len(got.Intermediates) != 0 || got.NodeTTL != time.Hour {
		t.Fatalf("authority: signer %v, %d intermediates, ttl %v", got.Signer.Subject, len(got.Intermediates), got.NodeTTL)
	}
	env["FAME_CA_KEY_FILE"] = rootKeyDir + "/" + IntermediateKeyFile
	c, _ = ConfigFromEnv(func(k string) string { return env[k] })
	if _, _, err := New(c, quiet); err == nil {
		t.Fatal("mismatched root key accepted")
	}
}
