package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
)

// issueDNS writes a server certificate naming only dnsName (no IP address) with serial.
func (ca *tlsTestCA) issueDNS(t *testing.T, serial int64, dnsName, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{dnsName}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	writeAtomically(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// httpsPost posts body to https://addr+path and returns the status and the decoded body.
func httpsPost(t *testing.T, client *http.Client, addr, path, body string, hdr http.Header) (int, map[string]any) {
	t.Helper()
	return postJSON(t, client, "https://"+addr+path, body, hdr)
}

// postJSON posts a JSON body to u with the headers in hdr and decodes the JSON answer.
func postJSON(t *testing.T, client *http.Client, u, body string, hdr http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// TestGatewayOverTLS: `fame sentinel -tls-cert` with FAME_GATEWAY=on serves the gateway over
// HTTPS, its caller nodes attaching over wss to the sentinel's own listener (the certificate
// names only sentinel.test, not 127.0.0.1: the caller nodes pin the served certificate
// instead of checking a name). No plain listener exists beside it. After the certificate is
// rotated, a new caller (another token, so another node) attaches against the new one.
func TestGatewayOverTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTLSTestCA(t)
	ca.issueDNS(t, 11, "sentinel.test", certPath, keyPath)
	p := startFameSentinel(t, map[string]string{"FAME_ADMISSION_PROFILE": "open", "FAME_GATEWAY": "on"},
		"-tls-cert", certPath, "-tls-key", keyPath)
	addr := p.fabric.addr
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "sentinel.test"}}}

	cfg := p.fabric.nodeConfig("*.fame.fabric")
	cfg.URL = "wss://" + addr + "/fame/v1/attach/ws/downstream"
	cfg.HTTPClient = client
	agentNode := p.fabric.connect(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := agentNode.Serve(ctx, mathagent.Address, mathagent.Ops("tls-gw")); err != nil {
		t.Fatal(err)
	}
	body := `{"targetAddr":"` + mathagent.Address + `","method":"add","params":{"x":3,"y":4}}`
	for i := range 10 {
		st, out := httpsPost(t, client, addr, "/fame/v1/gateway/rpc", body, nil)
		if st != 200 || out["ok"] != true || out["result"] != float64(7) {
			t.Fatalf("rpc %d over https: %d %v\n%s", i, st, out, p.out.String())
		}
	}
	// The listener speaks only TLS: a plain HTTP request to it gets no gateway answer.
	if resp, err := http.Post("http://"+addr+"/fame/v1/gateway/rpc", "application/json", bytes.NewReader([]byte(body))); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain http served the gateway: %s", b)
		}
	}

	ca.issueDNS(t, 22, "sentinel.test", certPath, keyPath)
	waitUntil(t, 10*time.Second, "the new certificate served", func() bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: "sentinel.test"})
		if err != nil {
			return false
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64() == 22
	})
	st, out := httpsPost(t, client, addr, "/fame/v1/gateway/rpc", body, http.Header{"Authorization": {"Bearer another-caller"}})
	if st != 200 || out["result"] != float64(7) {
		t.Fatalf("rpc from a new caller after rotation: %d %v\n%s", st, out, p.out.String())
	}
}
