package security

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// TrustDomain is the reference's SPIFFE trust domain for node certificates.
const TrustDomain = "naylence.fame"

// Reference certificate extension OIDs (private enterprise arc 58530); their extnValue is the
// raw UTF-8 value with no inner DER wrapper.
var (
	OIDSID      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 58530, 1}
	OIDLogicals = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 58530, 2}
	OIDNodeID   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 58530, 4}
)

// NodeIdentity is what a validated node certificate says about its holder.
type NodeIdentity struct {
	SPIFFEID  spiffeid.ID
	SID       string   // from the SPIFFE path /nodes/<sid>
	NodeID    string   // OID .4 (requester id / system id), may be empty
	Logicals  []string // OID .2, may be empty
	PublicKey ed25519.PublicKey
	NotAfter  time.Time
	Leaf      *x509.Certificate
}

// EncodeLogicals is the OIDLogicals extension value: the JSON list the reference writes with
// Python's json.dumps defaults (", " between items), so our certificates carry the same bytes.
func EncodeLogicals(logicals []string) ([]byte, error) {
	parts := make([]string, len(logicals))
	for i, l := range logicals {
		b, err := json.Marshal(l)
		if err != nil {
			return nil, fmt.Errorf("logicals extension: %w", err)
		}
		parts[i] = string(b)
	}
	return []byte("[" + strings.Join(parts, ", ") + "]"), nil
}

// NewTrustBundle builds the trust bundle for the reference trust domain from CA certificates.
func NewTrustBundle(roots []*x509.Certificate) *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(TrustDomain), roots)
}

// LoadTrustBundle reads FAME_CA_CERTS: a PEM file path, or inline PEM (detected by the
// "-----BEGIN" prefix, as the reference does).
func LoadTrustBundle(fameCACerts string) (*x509bundle.Bundle, error) {
	data := []byte(fameCACerts)
	if !strings.HasPrefix(strings.TrimSpace(fameCACerts), "-----BEGIN") {
		b, err := os.ReadFile(fameCACerts)
		if err != nil {
			return nil, fmt.Errorf("read FAME_CA_CERTS: %w", err)
		}
		data = b
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("FAME_CA_CERTS: %w", err)
	}
	return NewTrustBundle(certs), nil
}

// ParseCertificates decodes PEM (any number of CERTIFICATE blocks; other blocks skipped) or
// concatenated DER.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !pemLike(data) {
		certs, err := x509.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("%w: no certificate", ErrBadCertificate)
		}
		return certs, nil
	}
	return ParseCertificatesPEM(data)
}

// ParseCertificatesPEM decodes every CERTIFICATE block of PEM data (other blocks skipped);
// no block at all is an error.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadCertificate)
	}
	return certs, nil
}

func pemLike(b []byte) bool { return bytes.Contains(b, []byte("-----BEGIN")) }

// VerifyX5C validates a JWK x5c chain (standard base64 DER, leaf first, roots usually left
// out) with VerifyNodeCert.
func VerifyX5C(x5c []string, trust *x509bundle.Bundle, expectedSID string, now time.Time) (*NodeIdentity, error) {
	var certs []*x509.Certificate
	for i, s := range x5c {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %v", ErrBadCertificate, i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %v", ErrBadCertificate, i, err)
		}
		certs = append(certs, c)
	}
	return VerifyNodeChain(certs, trust, expectedSID, now)
}

// VerifyNodeCert validates a node certificate chain (PEM or DER, leaf first) against the
// trust bundle at time now with go-spiffe: the whole chain must be within validity and chain
// to a bundle authority (signatures checked, unlike the reference's serial-number match), the
// leaf must be an X509-SVID spiffe://naylence.fame/nodes/<sid>, and when expectedSID is not
// empty the certificate sid must equal it (strict-overlay: the envelope sid).
func VerifyNodeCert(chain []byte, trust *x509bundle.Bundle, expectedSID string, now time.Time) (*NodeIdentity, error) {
	certs, err := ParseCertificates(chain)
	if err != nil {
		return nil, err
	}
	return VerifyNodeChain(certs, trust, expectedSID, now)
}

// VerifyNodeChain is VerifyNodeCert on parsed certificates (leaf first, then intermediates).
func VerifyNodeChain(certs []*x509.Certificate, trust *x509bundle.Bundle, expectedSID string, now time.Time) (*NodeIdentity, error) {
	ni, err := VerifyNodeSVID(certs, trust, now)
	if err != nil {
		return nil, err
	}
	if ni.PublicKey == nil {
		return nil, fmt.Errorf("%w: leaf key is %T, want Ed25519", ErrBadCertificate, ni.Leaf.PublicKey)
	}
	if expectedSID != "" && ni.SID != expectedSID {
		return nil, fmt.Errorf("%w: certificate sid %q, expected %q", ErrSIDMismatch, ni.SID, expectedSID)
	}
	return ni, nil
}

// VerifyNodeSVID makes every check of VerifyNodeChain but the key type and the sid match: it
// tells whether certs is a node certificate of the trust domain at all, whatever key it
// certifies (the CA issues for ECDSA CSRs too). PublicKey is set only for an Ed25519 leaf,
// the only kind that can sign envelopes.
func VerifyNodeSVID(certs []*x509.Certificate, trust *x509bundle.Bundle, now time.Time) (*NodeIdentity, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: empty chain", ErrBadCertificate)
	}
	if trust == nil {
		return nil, fmt.Errorf("%w: no trust bundle", ErrUntrustedCert)
	}
	leaf := certs[0]
	// Report validity separately: callers treat an expired certificate (renew) differently
	// from a foreign one (reject).
	for _, c := range certs {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: %s valid %s..%s", ErrCertExpired, describeCert(c), c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
		}
	}
	id, _, err := x509svid.Verify(certs, trust, x509svid.WithTime(now))
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) || strings.Contains(err.Error(), "unknown authority") || strings.Contains(err.Error(), "could not get X509 bundle") {
			return nil, fmt.Errorf("%w: %v", ErrUntrustedCert, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	sid, ok := strings.CutPrefix(id.Path(), "/nodes/")
	if !ok || sid == "" || strings.Contains(sid, "/") {
		return nil, fmt.Errorf("%w: SPIFFE ID %s is not a node id", ErrBadCertificate, id)
	}
	ni := &NodeIdentity{SPIFFEID: id, SID: sid, NotAfter: leaf.NotAfter, Leaf: leaf}
	if pub, ok := leaf.PublicKey.(ed25519.PublicKey); ok {
		ni.PublicKey = pub
	}
	for _, ext := range leaf.Extensions {
		switch {
		case ext.Id.Equal(OIDSID):
			if string(ext.Value) != sid {
				return nil, fmt.Errorf("%w: sid extension %q differs from SPIFFE sid %q", ErrBadCertificate, ext.Value, sid)
			}
		case ext.Id.Equal(OIDNodeID):
			ni.NodeID = string(ext.Value)
		case ext.Id.Equal(OIDLogicals):
			if err := json.Unmarshal(ext.Value, &ni.Logicals); err != nil {
				return nil, fmt.Errorf("%w: logicals extension: %v", ErrBadCertificate, err)
			}
		}
	}
	return ni, nil
}

func describeCert(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	return c.Subject.String()
}
