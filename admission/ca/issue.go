package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/fame-go/fame/security"
)

// ErrBadCSR is returned for a CSR that cannot be used.
var ErrBadCSR = errors.New("ca: invalid CSR")

// NodeRequest is the identity to put in a node certificate.
type NodeRequest struct {
	RequesterID  string
	PhysicalPath string
	Logicals     []string
}

// Issued is a signed leaf with its chain.
type Issued struct {
	Leaf  *x509.Certificate
	Chain []*x509.Certificate // leaf first, intermediates after, no root
	SID   string
}

// LeafPEM and ChainPEM are the response encodings.
// Standard X.509 OIDs the CA writes and checks itself (the node OIDs are security's).
var (
	oidEKU    = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidClient = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	oidServer = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
)

func (i *Issued) LeafPEM() []byte  { return certPEM(i.Leaf) }
func (i *Issued) ChainPEM() []byte { return certPEM(i.Chain...) }

// IssueNode signs a node SVID for the CSR's public key. The CSR signature
// is checked (the reference does not).
func (a *Authority) IssueNode(csr *x509.CertificateRequest, req NodeRequest) (*Issued, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
	default:
		return nil, fmt.Errorf("%w: key type %T (want Ed25519 or ECDSA)", ErrBadCSR, k)
	}
	if req.RequesterID == "" || req.PhysicalPath == "" {
		return nil, fmt.Errorf("%w: requester id and physical path are required", ErrBadCSR)
	}
	sid := envelope.SecureDigest(req.PhysicalPath)
	td, err := spiffeid.TrustDomainFromString(a.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("ca: trust domain: %w", err)
	}
	id, err := spiffeid.FromSegments(td, "nodes", sid)
	if err != nil {
		return nil, fmt.Errorf("ca: SPIFFE ID: %w", err)
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidClient, oidServer})
	if err != nil {
		return nil, fmt.Errorf("ca: encode EKU: %w", err)
	}
	exts := []pkix.Extension{
		// Critical, as the reference writes it; Go's own EKU would not be.
		{Id: oidEKU, Critical: true, Value: eku},
		{Id: security.OIDSID, Value: []byte(sid)},
		{Id: security.OIDNodeID, Value: []byte(req.RequesterID)},
	}
	if len(req.Logicals) > 0 {
		lj, err := security.EncodeLogicals(req.Logicals)
		if err != nil {
			return nil, fmt.Errorf("ca: encode logicals: %w", err)
		}
		exts = append(exts, pkix.Extension{Id: security.OIDLogicals, Value: lj})
	}
	u := id.URL()
	now := a.Now()
	tmpl := &x509.Certificate{
		// Backdated a minute so a node whose clock lags slightly accepts it.
		NotBefore:       now.Add(-time.Minute),
		NotAfter:        now.Add(a.NodeTTL),
		URIs:            []*url.URL{u},
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: exts,
	}
	leaf, err := create(tmpl, a.Signer, csr.PublicKey, a.signerKey)
	if err != nil {
		return nil, err
	}
	return &Issued{Leaf: leaf, Chain: append([]*x509.Certificate{leaf}, a.Intermediates...), SID: sid}, nil
}

// IssueServerCert returns a TLS certificate (ECDSA P-256 key, 90 days) for
// the given DNS names / IP literals, chained to this CA, for the dev
// services' HTTPS listeners.
func (a *Authority) IssueServerCert(dnsNames []string) (*tls.Certificate, error) {
	return a.issueTLSCert(dnsNames, x509.ExtKeyUsageServerAuth)
}

// IssueClusterCert returns a TLS certificate like IssueServerCert's that is
// also valid as a client certificate: the links between clustered sentinels
// (NATS routes and client links) are mutual TLS, and each sentinel both dials
// and accepts them with the one certificate, so it needs both key usages.
func (a *Authority) IssueClusterCert(dnsNames []string) (*tls.Certificate, error) {
	return a.issueTLSCert(dnsNames, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

func (a *Authority) issueTLSCert(dnsNames []string, usage ...x509.ExtKeyUsage) (*tls.Certificate, error) {
	if len(dnsNames) == 0 {
		return nil, errors.New("ca: server certificate needs at least one name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: server key: %w", err)
	}
	now := a.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    now.Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: usage,
	}
	for _, n := range dnsNames {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	leaf, err := create(tmpl, a.Signer, key.Public(), a.signerKey)
	if err != nil {
		return nil, err
	}
	tc := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: crypto.Signer(key), Leaf: leaf}
	for _, c := range a.Intermediates {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}
