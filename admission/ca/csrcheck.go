package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"net/url"
	"slices"

	"github.com/fame-go/fame/envelope"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var (
	oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSKI        = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidKeyUsage   = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidSAN        = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasic      = asn1.ObjectIdentifier{2, 5, 29, 19}
)

// checkCSR refuses a CSR that asks for more than the request nr (already
// bound to the CA grant) will issue. The CA never copies a CSR's names or
// extensions into the certificate, so this changes nothing that is issued;
// it makes a request for another identity a refusal with a reason instead
// of a quietly trimmed certificate. What passes is what the reference's
// nodes and ours send (security.md A.8): subject CN = the requester id,
// SAN URIs naylence://<logical> for granted logicals (or the SPIFFE ID that
// will be issued), and harmless end-entity extensions.
func checkCSR(csr *x509.CertificateRequest, nr NodeRequest, trustDomain string) error {
	for _, atv := range csr.Subject.Names {
		if !atv.Type.Equal(oidCommonName) {
			return deny(CodeCSRNotGranted, "CSR subject attribute %s is not allowed (only CN)", atv.Type)
		}
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != nr.RequesterID {
		return deny(CodeCSRNotGranted, "CSR subject CN %q is not the granted system id %q", cn, nr.RequesterID)
	}
	if len(csr.DNSNames) > 0 || len(csr.EmailAddresses) > 0 || len(csr.IPAddresses) > 0 {
		return deny(CodeCSRNotGranted, "CSR asks for DNS, e-mail or IP names (a node certificate carries none)")
	}
	var spiffe string
	if td, err := spiffeid.TrustDomainFromString(trustDomain); err == nil {
		if id, err := spiffeid.FromSegments(td, "nodes", envelope.SecureDigest(nr.PhysicalPath)); err == nil {
			spiffe = id.String()
		}
	}
	for _, u := range csr.URIs {
		if err := checkURI(u, nr.Logicals, spiffe); err != nil {
			return err
		}
	}
	for _, ext := range csr.Extensions {
		if err := checkExtension(ext.Id, ext.Value); err != nil {
			return err
		}
	}
	return nil
}

func checkURI(u *url.URL, logicals []string, spiffe string) error {
	switch u.Scheme {
	case "naylence":
		if u.Path == "" && u.RawQuery == "" && u.User == nil && slices.Contains(logicals, u.Host) {
			return nil
		}
		return deny(CodeLogicalNotGranted, "CSR asks for %s, a logical outside the grant (granted: %q)", u, logicals)
	case "spiffe":
		if spiffe != "" && u.String() == spiffe {
			return nil
		}
		return deny(CodeCSRNotGranted, "CSR asks for SPIFFE ID %s; the grant is for %s", u, spiffe)
	}
	return deny(CodeCSRNotGranted, "CSR asks for URI %s", u)
}

func checkExtension(id asn1.ObjectIdentifier, v []byte) error {
	switch {
	case id.Equal(oidSAN), id.Equal(oidSKI):
		return nil // names are checked above; a key id asks for nothing
	case id.Equal(oidBasic):
		var bc struct {
			IsCA       bool `asn1:"optional"`
			MaxPathLen int  `asn1:"optional,default:-1"`
		}
		if rest, err := asn1.Unmarshal(v, &bc); err != nil || len(rest) > 0 || bc.IsCA {
			return deny(CodeCSRNotGranted, "CSR asks to be a CA (basicConstraints)")
		}
		return nil
	case id.Equal(oidKeyUsage):
		var ku asn1.BitString
		// Bits 5 and 6: keyCertSign, cRLSign.
		if rest, err := asn1.Unmarshal(v, &ku); err != nil || len(rest) > 0 || ku.At(5) == 1 || ku.At(6) == 1 {
			return deny(CodeCSRNotGranted, "CSR asks for certificate or CRL signing (keyUsage)")
		}
		return nil
	case id.Equal(oidEKU):
		var ekus []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(v, &ekus); err != nil || len(rest) > 0 {
			return deny(CodeCSRNotGranted, "CSR extendedKeyUsage is malformed")
		}
		for _, e := range ekus {
			if !e.Equal(oidClient) && !e.Equal(oidServer) {
				return deny(CodeCSRNotGranted, "CSR asks for extended key usage %s (a node certificate has clientAuth and serverAuth)", e)
			}
		}
		return nil
	}
	return deny(CodeCSRNotGranted, "CSR asks for extension %s, which the CA sets itself or not at all", id)
}
