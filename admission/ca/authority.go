package ca

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/fame-go/fame/security"
)

// Authority signs node and server certificates.
type Authority struct {
	Root *x509.Certificate
	// Signer signs leaves: the intermediate, or the root itself.
	Signer    *x509.Certificate
	signerKey crypto.Signer
	// Intermediates go into issued chains, leaf side first; never the root.
	Intermediates []*x509.Certificate
	TrustDomain   string
	NodeTTL       time.Duration // default 24 h
	Now           func() time.Time
}

// ErrBadMaterial is returned for unusable CA certificates or keys.
var ErrBadMaterial = errors.New("ca: bad CA material")

// NewAuthority assembles an Authority; signerKey must match signer's key.
func NewAuthority(root, signer *x509.Certificate, signerKey crypto.Signer, intermediates []*x509.Certificate) (*Authority, error) {
	if root == nil || signer == nil || signerKey == nil {
		return nil, fmt.Errorf("%w: root, signer and key are required", ErrBadMaterial)
	}
	if !signer.IsCA {
		return nil, fmt.Errorf("%w: signing certificate is not a CA", ErrBadMaterial)
	}
	if !publicKeysEqual(signer.PublicKey, signerKey.Public()) {
		return nil, fmt.Errorf("%w: signing key does not match the signing certificate", ErrBadMaterial)
	}
	if signer.Equal(root) {
		intermediates = nil
	}
	return &Authority{Root: root, Signer: signer, signerKey: signerKey, Intermediates: intermediates,
		TrustDomain: security.TrustDomain, NodeTTL: 24 * time.Hour, Now: time.Now}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// RootPEM is the trust anchor to give nodes (FAME_CA_CERTS).
func (a *Authority) RootPEM() []byte { return certPEM(a.Root) }

// Ephemeral creates an in-memory root + intermediate (nothing on disk).
func Ephemeral() (*Authority, error) {
	rootKey, root, err := newRoot(time.Now())
	if err != nil {
		return nil, err
	}
	intKey, inter, err := newIntermediate(root, rootKey, time.Now())
	if err != nil {
		return nil, err
	}
	return NewAuthority(root, inter, intKey, []*x509.Certificate{inter})
}

func newRoot(now time.Time) (ed25519.PrivateKey, *x509.Certificate, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate root key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nil,
		Subject:               pkix.Name{CommonName: "Fame Test Root CA", Organization: []string{"Naylence Fame"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(7300 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, err := create(tmpl, tmpl, key.Public(), key)
	return key, cert, err
}

func newIntermediate(root *x509.Certificate, rootKey crypto.Signer, now time.Time) (ed25519.PrivateKey, *x509.Certificate, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate intermediate key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Fame Development Intermediate CA", OrganizationalUnit: []string{"Fame Intermediate CAs"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(1825 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, err := create(tmpl, root, key.Public(), rootKey)
	return key, cert, err
}

// create fills in a random serial and signs.
func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1)) // never zero
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("ca: create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ParseCertsPEM decodes every CERTIFICATE block of b (security.ParseCertificatesPEM, with the
// CA's material error).
func ParseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	certs, err := security.ParseCertificatesPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMaterial, err)
	}
	return certs, nil
}

// ParseKeyPEM decodes a PKCS#8 (or SEC1 EC) private key.
func ParseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM key", ErrBadMaterial)
	}
	var k any
	var err error
	if block.Type == "EC PRIVATE KEY" {
		k, err = x509.ParseECPrivateKey(block.Bytes)
	} else {
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMaterial, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key type %T cannot sign", ErrBadMaterial, k)
	}
	return s, nil
}
