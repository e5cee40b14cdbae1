package ca

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fame-go/fame/security"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func csrPEM(t testing.TB, key any) string {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "r1node"},
		URIs: []*url.URL{{Scheme: "naylence", Host: "*.fame.fabric"}}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func edKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestInitCAIdempotent(t *testing.T) {
	dir := t.TempDir()
	a1, err := InitCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{RootKeyFile, IntermediateKeyFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v err %v, want 0600", name, st.Mode().Perm(), err)
		}
	}
	for _, name := range []string{RootCertFile, IntermediateCertFile, IntermediateChainFile, CompleteChainFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%s missing: %v", name, err)
		}
	}
	a2, err := InitCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !a1.Root.Equal(a2.Root) || !a1.Signer.Equal(a2.Signer) {
		t.Fatal("second InitCA replaced the CA")
	}
	if _, ok := a1.Root.PublicKey.(ed25519.PublicKey); !ok || !a1.Root.IsCA || !a1.Signer.MaxPathLenZero {
		t.Fatalf("root/intermediate shape wrong: %T", a1.Root.PublicKey)
	}
	// A root certificate without its key must not lead to a fresh root.
	if err := os.Remove(filepath.Join(dir, RootKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(dir); err == nil {
		t.Fatal("InitCA accepted a root certificate without key")
	}
}

func oidValue(c *x509.Certificate, oid asn1.ObjectIdentifier) (string, bool, bool) {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return string(e.Value), e.Critical, true
		}
	}
	return "", false, false
}

// The certificate contents of security.md A.8.
func TestIssueNodeA8(t *testing.T) {
	a, err := InitCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := edKey(t)
	_, csr, err := DecodeSignRequest([]byte(`{"requester_id":"r1node","csr_pem":` + jsonString(csrPEM(t, key)) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	is, err := a.IssueNode(csr, NodeRequest{RequesterID: "r1node", PhysicalPath: "/Cb8WVCC4ML5RsFM/r1node", Logicals: []string{"*.fame.fabric"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(is.Leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	const sid = "3kK8jbqewlvFx9gZDYtrXM"
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://naylence.fame/nodes/"+sid {
		t.Fatalf("SAN URIs = %v", leaf.URIs)
	}
	if len(leaf.Subject.Names) != 0 {
		t.Fatalf("subject = %v, want empty", leaf.Subject)
	}
	if pub, ok := leaf.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key.Public()) {
		t.Fatal("leaf key is not the CSR's Ed25519 key")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || leaf.IsCA {
		t.Fatalf("key usage = %v", leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 2 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("EKU = %v", leaf.ExtKeyUsage)
	}
	if _, crit, _ := oidValue(leaf, oidEKU); !crit {
		t.Fatal("EKU not critical")
	}
	want := map[string]string{"1.3.6.1.4.1.58530.1": sid, "1.3.6.1.4.1.58530.4": "r1node", "1.3.6.1.4.1.58530.2": `["*.fame.fabric"]`}
	for _, oid := range []asn1.ObjectIdentifier{security.OIDSID, security.OIDNodeID, security.OIDLogicals} {
		v, crit, ok := oidValue(leaf, oid)
		if !ok || crit || v != want[oid.String()] {
			t.Errorf("%s = %q (critical %v, present %v), want %q", oid, v, crit, ok, want[oid.String()])
		}
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 24*time.Hour || d > 24*time.Hour+2*time.Minute {
		t.Fatalf("validity %v, want 1 day", d)
	}
	if leaf.SignatureAlgorithm != x509.PureEd25519 || !bytes.Equal(leaf.RawIssuer, a.Signer.RawSubject) {
		t.Fatalf("signature %v / issuer %v", leaf.SignatureAlgorithm, leaf.Issuer)
	}
	id, err := security.VerifyNodeSVID(is.Chain, security.NewTrustBundle([]*x509.Certificate{a.Root}), time.Now())
	if err != nil {
		t.Fatalf("own certificate refused: %v", err)
	}
	if id.SID != sid || id.NodeID != "r1node" || len(id.Logicals) != 1 || id.Logicals[0] != "*.fame.fabric" {
		t.Fatalf("identity = %+v", id)
	}
}

func TestLogicalsJSONPythonSeparators(t *testing.T) {
	b, _ := security.EncodeLogicals([]string{"a.fame.fabric", "*.fame.fabric"})
	if string(b) != `["a.fame.fabric", "*.fame.fabric"]` {
		t.Fatalf("logicals JSON = %s", b)
	}
}

func TestVerifyNodeCertRefusals(t *testing.T) {
	ours, _ := Ephemeral()
	theirs, _ := Ephemeral()
	_, csr, _ := DecodeSignRequest([]byte(`{"requester_id":"n","csr_pem":` + jsonString(csrPEM(t, edKey(t))) + `}`))
	req := NodeRequest{RequesterID: "n", PhysicalPath: "/S/n"}
	foreign, _ := theirs.IssueNode(csr, req)
	good, _ := ours.IssueNode(csr, req)
	otherTD, _ := Ephemeral()
	otherTD.TrustDomain = "evil.example"
	wrongTD, _ := otherTD.IssueNode(csr, req)
	roots := []*x509.Certificate{ours.Root}
	cases := []struct {
		name  string
		chain []*x509.Certificate
		roots []*x509.Certificate
		now   time.Time
	}{
		{"another CA", foreign.Chain, roots, time.Now()},
		{"another CA, our intermediate appended", append([]*x509.Certificate{foreign.Leaf}, ours.Intermediates...), roots, time.Now()},
		{"expired", good.Chain, roots, time.Now().Add(48 * time.Hour)},
		{"missing intermediate", good.Chain[:1], roots, time.Now()},
		{"other trust domain", wrongTD.Chain, []*x509.Certificate{otherTD.Root}, time.Now()},
		{"empty", nil, roots, time.Now()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := security.VerifyNodeSVID(tc.chain, security.NewTrustBundle(tc.roots), tc.now); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := security.VerifyNodeSVID(good.Chain, security.NewTrustBundle(roots), time.Now()); err != nil {
		t.Fatalf("control case refused: %v", err)
	}
}

func TestIssueNodeRejectsBadCSR(t *testing.T) {
	a, _ := Ephemeral()
	_, csr, _ := DecodeSignRequest([]byte(`{"requester_id":"n","csr_pem":` + jsonString(csrPEM(t, edKey(t))) + `}`))
	csr.Signature[0] ^= 0xff
	if _, err := a.IssueNode(csr, NodeRequest{RequesterID: "n", PhysicalPath: "/S/n"}); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("tampered CSR: err = %v", err)
	}
}

func TestIssueServerCert(t *testing.T) {
	a, _ := Ephemeral()
	tc, err := a.IssueServerCert([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*tc}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(a.Root)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("TLS with our server certificate failed: %v", err)
	}
	resp.Body.Close()
	other, _ := Ephemeral()
	pool2 := x509.NewCertPool()
	pool2.AddCert(other.Root)
	client2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool2}}}
	if _, err := client2.Get(srv.URL); err == nil {
		t.Fatal("server certificate accepted by a client trusting another CA")
	}
}

// TestIssueClusterCert: the cluster certificate works at both ends of a mutual-TLS link (the
// NATS routes between sentinels); a plain server certificate is refused as the client's.
func TestIssueClusterCert(t *testing.T) {
	a, _ := Ephemeral()
	tc, err := a.IssueClusterCert([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(a.Root)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*tc}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	get := func(client tls.Certificate) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}}}}
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(*tc); err != nil {
		t.Fatalf("mutual TLS with the cluster certificate at both ends failed: %v", err)
	}
	server, err := a.IssueServerCert([]string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if err := get(*server); err == nil {
		t.Fatal("a server-only certificate was accepted as a client certificate")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func FuzzDecodeSignRequest(f *testing.F) {
	f.Add([]byte(`{"requester_id":"r1node","csr_pem":` + jsonString(csrPEM(f, ed25519.NewKeyFromSeed(make([]byte, 32)))) + `,"logicals":["*.fame.fabric"]}`))
	f.Add([]byte(`{"requester_id":"x","csr_pem":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}`))
	f.Add([]byte(`{"csr_pem":1}`))
	a, err := Ephemeral()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, csr, err := DecodeSignRequest(b)
		if err != nil {
			return
		}
		if req.RequesterID == "" || csr == nil {
			t.Fatal("decoded request without requester or CSR")
		}
		// Whatever decodes must be handled by the signer without panicking.
		_, _ = a.IssueNode(csr, NodeRequest{RequesterID: req.RequesterID, PhysicalPath: "/S/" + req.RequesterID, Logicals: req.Logicals})
	})
}

func BenchmarkIssueNode(b *testing.B) {
	a, _ := Ephemeral()
	_, csr, _ := DecodeSignRequest([]byte(`{"requester_id":"n","csr_pem":` + jsonString(csrPEM(b, edKey(b))) + `}`))
	req := NodeRequest{RequesterID: "n", PhysicalPath: "/S/n", Logicals: []string{"*.fame.fabric"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.IssueNode(csr, req); err != nil {
			b.Fatal(err)
		}
	}
}
