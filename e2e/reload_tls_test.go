package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// tlsTestCA signs loopback server certificates with chosen serial numbers.
type tlsTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTLSTestCA(t *testing.T) *tlsTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reload test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tlsTestCA{cert: cert, key: key, pool: pool}
}

// issue writes a 127.0.0.1 server certificate with serial to certPath and its key to keyPath,
// each by a rename, as cert-manager and config tools replace files.
func (ca *tlsTestCA) issue(t *testing.T, serial int64, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "sentinel"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
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

// servedSerial makes a new TLS connection to addr and returns the serial of the leaf it gets.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// httpsMetric reads one unlabelled sample (or one with labels) from https://addr/metrics.
func httpsMetric(t *testing.T, client *http.Client, addr, name string, labels ...string) float64 {
	t.Helper()
	resp, err := client.Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	prefix := name + " "
	if len(labels) > 0 {
		prefix = name + "{" + strings.Join(labels, ",") + "} "
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// TestReloadRotatesTLSCertificate: `fame sentinel -tls-cert -tls-key` serves wss; the
// certificate files are replaced; new TLS connections get the new certificate (its serial)
// without a restart, and the connections made before keep working, never re-attaching.
func TestReloadRotatesTLSCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTLSTestCA(t)
	ca.issue(t, 1001, certPath, keyPath)
	p := startFameSentinel(t, map[string]string{"FAME_LISTENER_HOST": "127.0.0.1", "FAME_LISTENER_PORT": "0"},
		"-tls-cert", certPath, "-tls-key", keyPath)
	addr := p.fabric.addr
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	connect := func(logicals ...string) *node.Node {
		cfg := p.fabric.nodeConfig(logicals...)
		cfg.URL = "wss://" + addr + "/fame/v1/attach/ws/downstream"
		cfg.HTTPClient = client
		return p.fabric.connect(cfg)
	}
	call := func(n *node.Node) {
		t.Helper()
		var sum int
		if err := n.Call(context.Background(), mathagent.Address, "add", map[string]any{"x": 20, "y": 22}, &sum); err != nil || sum != 42 {
			t.Fatalf("call: %d, %v", sum, err)
		}
	}
	if got := servedSerial(t, addr, ca.pool); got != 1001 {
		t.Fatalf("serial %d at start, want 1001", got)
	}
	replica := connect("*.fame.fabric")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := replica.Serve(ctx, mathagent.Address, mathagent.Ops("tls-replica")); err != nil {
		t.Fatal(err)
	}
	old := connect()
	call(old)
	attaches := httpsMetric(t, client, addr, "fame_attaches_total")

	ca.issue(t, 2002, certPath, keyPath)
	waitUntil(t, 10*time.Second, "the new certificate served", func() bool { return servedSerial(t, addr, ca.pool) == 2002 })
	if !strings.Contains(p.out.String(), "applied=[-tls-cert]") || !strings.Contains(p.out.String(), "old_serial=3e9 serial=7d2") {
		t.Fatal("no log line for the rotation")
	}

	// The connections of before the rotation: still the same ones, still serving.
	for range 10 {
		call(old)
	}
	fresh := connect()
	call(fresh)
	if got := httpsMetric(t, client, addr, "fame_attaches_total"); got != attaches+1 {
		t.Fatalf("fame_attaches_total %v, want %v (only the new client): an old connection re-attached", got, attaches+1)
	}
	if got := httpsMetric(t, client, addr, "fame_config_reloads_total", `result="applied"`); got < 1 {
		t.Fatalf("applied reloads %v", got)
	}

	// A broken certificate file: refused, the current certificate stays.
	refused := httpsMetric(t, client, addr, "fame_config_reloads_total", `result="refused"`)
	if err := os.WriteFile(certPath, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the broken certificate refused", func() bool {
		return httpsMetric(t, client, addr, "fame_config_reloads_total", `result="refused"`) == refused+1
	})
	if got := servedSerial(t, addr, ca.pool); got != 2002 {
		t.Fatalf("serial %d after a broken file, want 2002", got)
	}
	call(old)
}
