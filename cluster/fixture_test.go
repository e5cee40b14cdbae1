package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pki is a throwaway CA and one leaf it issued (the stack CA's role), plus
// a rogue CA's leaf for the attack tests.
type pki struct {
	dir                     string
	good, rogue, serverOnly TLSFiles
}

func writePEM(t tb, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCA(t tb, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(dir, name+"-ca.pem")
	writePEM(t, path, "CERTIFICATE", der)
	return cert, key, path
}

func newLeaf(t tb, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, caPath string, usage []x509.ExtKeyUsage) TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem"), CA: caPath}
	writePEM(t, f.Cert, "CERTIFICATE", der)
	writePEM(t, f.Key, "EC PRIVATE KEY", kder)
	return f
}

func newPKI(t tb, dir string) pki {
	ca, caKey, caPath := newCA(t, dir, "stack")
	rca, rcaKey, _ := newCA(t, dir, "rogue")
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	p := pki{dir: dir}
	p.good = newLeaf(t, dir, "sentinel", ca, caKey, caPath, both)
	// The rogue leaf names the stack CA as the CA to trust (the attacker
	// knows it, it is public) but is issued by another CA.
	p.rogue = newLeaf(t, dir, "rogue", rca, rcaKey, caPath, both)
	p.serverOnly = newLeaf(t, dir, "serveronly", ca, caKey, caPath, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	return p
}

const (
	testUser = "fame-cluster"
	testPass = "correct horse battery staple"
)

// testCluster is n members clustered on loopback with random ports.
type testCluster struct {
	name    string
	pki     pki
	members []*Member
	dirs    []string
	listen  []string
	seeds   []string
	base    Config
}

func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func (tc *testCluster) config(i int) Config {
	c := tc.base
	c.SentinelID = fmt.Sprintf("s%d", i)
	c.Listen = tc.listen[i]
	c.Routes = tc.seeds
	c.DataDir = tc.dirs[i]
	return c
}

// startCluster starts n members, each with every member's route address as
// its seeds (as an operator would configure them), and waits until both
// buckets are bound and loaded everywhere.
func startCluster(t tb, root, name string, n int) *testCluster {
	t.Helper()
	tc := &testCluster{name: name, pki: newPKI(t, root)}
	tc.base = Config{
		Name: name, Replicas: min(3, n), TLS: tc.pki.good,
		Auth:      Auth{User: testUser, Password: testPass},
		Heartbeat: 250 * time.Millisecond, WriteTimeout: 2 * time.Second,
		DirectoryTTL: 3 * time.Second, LameDuck: 2 * time.Second,
	}
	for i := range n {
		tc.dirs = append(tc.dirs, filepath.Join(root, fmt.Sprintf("data%d", i)))
		addr := freePort(t)
		tc.listen = append(tc.listen, addr)
		tc.seeds = append(tc.seeds, "nats-route://"+addr)
	}
	for i := range n {
		m, err := Open(tc.config(i), testLogger(), NewMetrics())
		if err != nil {
			tc.close()
			t.Fatalf("open member %d: %v", i, err)
		}
		tc.members = append(tc.members, m)
	}
	tc.waitReady(t)
	return tc
}

func (tc *testCluster) waitReady(t tb) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for _, m := range tc.members {
		if m == nil {
			continue
		}
		for _, ch := range []<-chan struct{}{m.Store.Ready(), m.Store.Synced(), m.Directory.Ready(), m.Directory.Synced(), m.Keys.Ready()} {
			select {
			case <-ch:
			case <-deadline:
				t.Fatalf("%s: cluster not ready after 60s (routes %d)", m.Config.SentinelID, m.Embedded.Routes())
			}
		}
	}
}

func (tc *testCluster) close() {
	for _, m := range tc.members {
		if m != nil {
			m.Close()
		}
	}
}

// kill crashes member i.
func (tc *testCluster) kill(i int) {
	tc.members[i].Kill()
	tc.members[i] = nil
}

// leaderOf returns the index of the member leading stream's Raft group.
func (tc *testCluster) leaderOf(t tb, from int, stream string) int {
	t.Helper()
	js, err := jetstream.New(tc.members[from].Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	for i, m := range tc.members {
		if m != nil && m.Config.SentinelID == info.Cluster.Leader {
			return i
		}
	}
	t.Fatalf("leader %q of %s is not a member", info.Cluster.Leader, stream)
	return -1
}

// eventually polls cond every 5 ms until it holds or d passes.
func eventually(t tb, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

// shared is the cluster of this package's non-destructive tests (TestMain).
var shared *testCluster

func TestMain(m *testing.M) {
	root, err := os.MkdirTemp("", "fame-cluster-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mt := &mainTB{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != errMainFatal {
				panic(r)
			}
		}()
		start := time.Now()
		shared = startCluster(mt, root, "shared", 3)
		fmt.Fprintf(os.Stderr, "shared 3-server cluster ready in %v\n", time.Since(start).Round(time.Millisecond))
	}()
	code := 1
	if !mt.failed {
		code = m.Run()
		shared.close()
	}
	os.RemoveAll(root)
	os.Exit(code)
}

// tb is what the fixture needs of a test, so TestMain can build it too.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

var errMainFatal = fmt.Errorf("fixture failed")

type mainTB struct{ failed bool }

func (*mainTB) Helper() {}
func (m *mainTB) Fatal(args ...any) {
	m.failed = true
	fmt.Fprintln(os.Stderr, args...)
	panic(errMainFatal)
}
func (m *mainTB) Fatalf(f string, args ...any) { m.Fatal(fmt.Sprintf(f, args...)) }

// freePort returns a loopback address that was free a moment ago.
func freePort(t tb) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
