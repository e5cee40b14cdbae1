package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// testAuthority is a throwaway root that issues node SVIDs the way the reference CA does
// (spiffe://naylence.fame/nodes/<sid>, the sid extension), so the node's tests need neither
// admission/ca nor any other service package (see TestNodeTestDependencies).
type testAuthority struct {
	Root *x509.Certificate
	key  ed25519.PrivateKey
}

func newTestAuthority(t *testing.T) *testAuthority {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "node test root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testAuthority{Root: root, key: priv}
}

// issueNode certifies pub for physicalPath; the chain is the leaf alone (the root is the
// trust anchor).
func (a *testAuthority) issueNode(t *testing.T, pub ed25519.PublicKey, physicalPath string) []*x509.Certificate {
	t.Helper()
	sid := envelope.SecureDigest(physicalPath)
	u, err := url.Parse("spiffe://" + security.TrustDomain + "/nodes/" + sid)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(time.Now().UnixNano()),
		NotBefore:       time.Now().Add(-time.Minute),
		NotAfter:        time.Now().Add(time.Hour),
		URIs:            []*url.URL{u},
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: security.OIDSID, Value: []byte(sid)}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Root, pub, a.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{leaf}
}
