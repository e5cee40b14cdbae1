package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/internal/loopport"
	"github.com/fame-go/fame/node"
)

// clusterPKI is a throwaway stack CA and the one leaf the sentinels share for the cluster's
// mutual TLS (routes and client links).
type clusterPKI struct {
	ca, cert, key string
}

func writePEMFile(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newClusterPKI(t *testing.T, dir string) clusterPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stack-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sentinel"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := clusterPKI{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "sentinel.pem"), key: filepath.Join(dir, "sentinel-key.pem")}
	writePEMFile(t, p.ca, "CERTIFICATE", caDER)
	writePEMFile(t, p.cert, "CERTIFICATE", der)
	writePEMFile(t, p.key, "EC PRIVATE KEY", kder)
	return p
}

// freePorts returns n loopback TCP ports for processes the test starts (the cluster's NATS
// route and client ports), below the kernel's ephemeral range (internal/loopport).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ps, err := loopport.Free(n)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

const (
	clusterUser = "fame-cluster"
	clusterPass = "e2e cluster password, not a real one"
)

// clusterFixture is n `fame sentinel` processes clustered over embedded NATS on loopback.
type clusterFixture struct {
	t          *testing.T
	ids        []string
	procs      []*sentinelProc
	clientPort []int // each sentinel's NATS client port
	pki        clusterPKI
}

// startCluster starts sentinels s0..s(n-1) with routes to each other and waits until each
// hears every other one.
func startCluster(t *testing.T, n int, grace string) *clusterFixture {
	t.Helper()
	return startClusterWith(t, n, grace, "")
}

// startClusterWith is startCluster with extra YAML under each sentinel's node: block (lines
// indented by two spaces, e.g. a limits: block).
func startClusterWith(t *testing.T, n int, grace, nodeYAML string) *clusterFixture {
	t.Helper()
	return startClusterEnv(t, n, grace, nodeYAML, nil)
}

// startClusterEnv is startClusterWith with env for every sentinel process (e.g.
// FAME_ADMIN_TOKEN, which the fixture's metric reads then send).
func startClusterEnv(t *testing.T, n int, grace, nodeYAML string, env map[string]string) *clusterFixture {
	t.Helper()
	return startClusterSpec(t, clusterSpec{n: n, grace: grace, env: func(int) map[string]string { return env },
		node: "  security: {type: SecurityProfile, profile: open}\n  admission: {type: AdmissionProfile, profile: none}\n" + nodeYAML})
}

// url is sentinel i's attach URL.
func (cf *clusterFixture) url(i int) string { return cf.procs[i].url() }

// rotating is an AttachURL that starts at sentinel start and moves to the next one on every
// dial: a node whose sentinel died re-attaches to another (the way a client with a list of
// sentinel URLs fails over).
func (cf *clusterFixture) rotating(start int) func(context.Context) (string, error) {
	var next atomic.Int64
	next.Store(int64(start) - 1)
	return func(context.Context) (string, error) {
		i := int(next.Add(1)) % len(cf.procs)
		return cf.url(i), nil
	}
}

// waitReplicas waits until every live sentinel's directory shows want replicas up.
func (cf *clusterFixture) waitReplicas(want int, skip ...int) {
	cf.t.Helper()
	for i, p := range cf.procs {
		if containsInt(skip, i) {
			continue
		}
		waitUntil(cf.t, 45*time.Second, fmt.Sprintf("%s seeing %d replicas up", cf.ids[i], want), func() bool {
			return p.metric(cf.t, "fame_cluster_directory_replicas", `state="up"`) == float64(want)
		})
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// clusterClient is a node config for a client of sentinel i (rotating: fails over).
func (cf *clusterFixture) clientConfig(i int, rotate bool) node.Config {
	cfg := cf.procs[i].nodeConfig("fame.fabric")
	if rotate {
		cfg.AttachURL = cf.rotating(i)
	}
	return cfg
}
