package security

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/url"
)

// NewNodeKey creates a node's Ed25519 signing key.
func NewNodeKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return priv, nil
}

// CreateCSR builds the PEM CSR the reference's nodes send to the CA (§4.3): Ed25519-signed
// PKCS#10, subject CN=<nodeID>, one SAN URI naylence://<logical> per logical. The CA takes
// only the public key from it; the identity comes from the request body.
func CreateCSR(priv ed25519.PrivateKey, nodeID string, logicals []string) ([]byte, error) {
	if nodeID == "" {
		return nil, fmt.Errorf("csr: empty node id")
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: nodeID}}
	for _, l := range logicals {
		u, err := url.Parse("naylence://" + l)
		if err != nil || u.Host != l {
			return nil, fmt.Errorf("csr: logical %q is not a host name", l)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, priv)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
