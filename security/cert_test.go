package security

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
}

var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func newTestCA(t testing.TB, name string, parent *testCA) *testCA {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Naylence Fame"}},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	signer, signerKey := tmpl, priv
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
		tmpl.MaxPathLenZero = true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, pub, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: priv}
}

// issue mimics the reference CA's node certificate (§4.4).
func (ca *testCA) issue(t testing.TB, pub ed25519.PublicKey, physicalPath, nodeID string, logicals []string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	sid := SIDForPath(physicalPath)
	u, _ := url.Parse("spiffe://naylence.fame/nodes/" + sid)
	lj, _ := json.Marshal(logicals)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		URIs:         []*url.URL{u},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		ExtraExtensions: []pkix.Extension{
			{Id: OIDSID, Value: []byte(sid)},
			{Id: OIDNodeID, Value: []byte(nodeID)},
			{Id: OIDLogicals, Value: lj},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemChain(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func TestVerifyNodeCert(t *testing.T) {
	root := newTestCA(t, "Fame Test Root CA", nil)
	inter := newTestCA(t, "Dev Intermediate CA", root)
	foreign := newTestCA(t, "Other CA", nil)
	bundle := NewTrustBundle([]*x509.Certificate{root.cert})
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	const path = "/Cb8WVCC4ML5RsFM/r1node"
	sid := SIDForPath(path)
	day := func(from time.Time) (time.Time, time.Time) { return from, from.Add(24 * time.Hour) }
	nb, na := day(testNow.Add(-time.Hour))
	leaf := root.issue(t, pub, path, "r1node", []string{"*.fame.fabric"}, nb, na)
	viaInter := inter.issue(t, pub, path, "r1node", nil, nb, na)
	expired := root.issue(t, pub, path, "r1node", nil, testNow.Add(-48*time.Hour), testNow.Add(-24*time.Hour))
	future := root.issue(t, pub, path, "r1node", nil, testNow.Add(time.Hour), testNow.Add(48*time.Hour))
	alien := foreign.issue(t, pub, path, "r1node", nil, nb, na)

	tests := []struct {
		name  string
		chain []byte
		sid   string
		want  error
	}{
		{"direct PEM", pemChain(leaf), sid, nil},
		{"direct DER", leaf.Raw, sid, nil},
		{"any sid", pemChain(leaf), "", nil},
		{"intermediate", pemChain(viaInter, inter.cert), sid, nil},
		{"intermediate missing", pemChain(viaInter), sid, ErrUntrustedCert},
		{"expired", pemChain(expired), sid, ErrCertExpired},
		{"not yet valid", pemChain(future), sid, ErrCertExpired},
		{"foreign CA", pemChain(alien), sid, ErrUntrustedCert},
		{"sid mismatch", pemChain(leaf), SIDForPath("/other"), ErrSIDMismatch},
		{"garbage", []byte("not a cert"), sid, ErrBadCertificate},
		{"CA as leaf", pemChain(root.cert), sid, ErrBadCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := VerifyNodeCert(tt.chain, bundle, tt.sid, testNow)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			if id.SID != sid || id.NodeID != "r1node" || !id.PublicKey.Equal(pub) {
				t.Fatalf("identity %+v", id)
			}
		})
	}
	id, err := VerifyNodeCert(pemChain(leaf), bundle, sid, testNow)
	if err != nil || len(id.Logicals) != 1 || id.Logicals[0] != "*.fame.fabric" || id.SPIFFEID.String() != "spiffe://naylence.fame/nodes/"+sid {
		t.Fatalf("logicals/spiffe id: %+v %v", id, err)
	}
}

func TestKeyStoreX5C(t *testing.T) {
	root := newTestCA(t, "Fame Test Root CA", nil)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	const path = "/root/child"
	leaf := root.issue(t, pub, path, "child", nil, testNow.Add(-time.Hour), testNow.Add(time.Hour))
	now := testNow
	ks := NewKeyStore(KeyStoreOptions{Trust: NewTrustBundle([]*x509.Certificate{root.cert}), Now: func() time.Time { return now }})
	j := SigningJWK(pub, "kid-1")
	j.X5C = []string{base64.StdEncoding.EncodeToString(leaf.Raw)}
	if err := ks.Add(j, "/root/elsewhere"); !errors.Is(err, ErrSIDMismatch) {
		t.Fatalf("wrong path: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	bad := j
	bad.X = SigningJWK(other, "x").X
	if err := ks.Add(bad, path); !errors.Is(err, ErrBadJWK) {
		t.Fatalf("x/leaf mismatch: %v", err)
	}
	if err := ks.Add(j, path); err != nil {
		t.Fatal(err)
	}
	env := unsigned(t, a2Data, false)
	env.SID = SIDForPath(path)
	if err := (&Signer{Key: priv, Kid: "kid-1"}).Sign(env); err != nil {
		t.Fatal(err)
	}
	if k, err := ks.Verify(env, false); err != nil || k.Identity == nil {
		t.Fatalf("verify: %v", err)
	}
	now = testNow.Add(2 * time.Hour)
	if _, err := ks.Verify(env, false); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestCreateCSR(t *testing.T) {
	priv, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := CreateCSR(priv, "r1node", []string{"*.fame.fabric", "fame.fabric"})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(p)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("pem %q", p)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "r1node" || len(csr.URIs) != 2 || csr.URIs[0].String() != "naylence://*.fame.fabric" {
		t.Fatalf("csr subject %v uris %v", csr.Subject, csr.URIs)
	}
	if !csr.PublicKey.(ed25519.PublicKey).Equal(priv.Public()) {
		t.Fatal("csr key")
	}
	if _, err := CreateCSR(priv, "", nil); err == nil {
		t.Fatal("empty node id accepted")
	}
	if _, err := CreateCSR(priv, "n", []string{"bad/logical"}); err == nil {
		t.Fatal("bad logical accepted")
	}
}
