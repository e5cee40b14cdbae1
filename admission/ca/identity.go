package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultTrustDomain is the reference's SPIFFE trust domain.
const DefaultTrustDomain = "naylence.fame"

// Naylence private OIDs carried by node certificates.
var (
	OIDSID      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 58530, 1}
	OIDLogicals = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 58530, 2}
	OIDNodeID   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 58530, 4}
	oidEKU      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidClient   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	oidServer   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
)

// ErrNotNodeCert means a chain verified but its leaf is not a node SVID of
// the expected shape.
var ErrNotNodeCert = errors.New("ca: not a node certificate")

// NodeIdentity is what a node certificate asserts.
type NodeIdentity struct {
	ID       spiffeid.ID
	SID      string
	NodeID   string
	Logicals []string
	NotAfter time.Time
}

// VerifyNodeCert verifies chain (leaf first, then intermediates, as in a
// JWK x5c) against roots for trustDomain and returns the node identity.
// A certificate from another CA, or an SVID of another trust domain, is
// refused.
func VerifyNodeCert(chain []*x509.Certificate, roots []*x509.Certificate, trustDomain string, now time.Time) (*NodeIdentity, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: empty chain", ErrNotNodeCert)
	}
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("ca: trust domain %q: %w", trustDomain, err)
	}
	id, _, err := x509svid.Verify(chain, x509bundle.FromX509Authorities(td, roots), x509svid.WithTime(now))
	if err != nil {
		return nil, fmt.Errorf("ca: verify node certificate: %w", err)
	}
	return identityOf(chain[0], id)
}

func identityOf(leaf *x509.Certificate, id spiffeid.ID) (*NodeIdentity, error) {
	sid, ok := strings.CutPrefix(id.Path(), "/nodes/")
	if !ok || sid == "" || strings.Contains(sid, "/") {
		return nil, fmt.Errorf("%w: SPIFFE ID %s is not /nodes/<sid>", ErrNotNodeCert, id)
	}
	n := &NodeIdentity{ID: id, SID: sid, NotAfter: leaf.NotAfter}
	for _, ext := range leaf.Extensions {
		switch {
		case ext.Id.Equal(OIDSID):
			if string(ext.Value) != sid {
				return nil, fmt.Errorf("%w: sid extension %q differs from SAN sid %q", ErrNotNodeCert, ext.Value, sid)
			}
		case ext.Id.Equal(OIDNodeID):
			n.NodeID = string(ext.Value)
		case ext.Id.Equal(OIDLogicals):
			if err := json.Unmarshal(ext.Value, &n.Logicals); err != nil {
				return nil, fmt.Errorf("%w: logicals extension: %v", ErrNotNodeCert, err)
			}
		}
	}
	return n, nil
}

// logicalsJSON encodes logicals the way Python's json.dumps does by default
// (", " between items), so the extension bytes match the reference's.
func logicalsJSON(logicals []string) ([]byte, error) {
	parts := make([]string, len(logicals))
	for i, l := range logicals {
		b, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		parts[i] = string(b)
	}
	return []byte("[" + strings.Join(parts, ", ") + "]"), nil
}
