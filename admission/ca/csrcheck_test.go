package ca

import (
	"bufio"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/security"
)

func (f *caFixture) metric(t *testing.T, name, labels string) string {
	t.Helper()
	resp, err := http.Get(f.srv.URL + MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want+" "); ok {
			return v
		}
	}
	return "0"
}

func csrWith(t *testing.T, tmpl *x509.CertificateRequest) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, edKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func ext(t *testing.T, id asn1.ObjectIdentifier, v any) pkix.Extension {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: id, Value: b}
}

// A CSR (or a body) asking for more than the CA grant: another node's
// name, a logical outside the grant, another SPIFFE ID, a CA certificate.
// Refused with 403 and a code, counted; what passes is issued with the
// ticket's identity only.
func TestSignBeyondGrantRefused(t *testing.T) {
	f := newCAFixture(t)
	const path = "/Cb8WVCC4ML5RsFM/r1node"
	grant, _, _ := f.issuer.IssueCA(ticket.Placement{SystemID: "r1node", ParentPath: "/Cb8WVCC4ML5RsFM",
		AssignedPath: path, AcceptedLogicals: []string{"*.fame.fabric"}, ClientID: "math-replicas"})
	ownID := "spiffe://naylence.fame/nodes/" + envelope.SecureDigest(path)
	otherID := "spiffe://naylence.fame/nodes/" + envelope.SecureDigest("/Cb8WVCC4ML5RsFM/math-replica1")
	cn := pkix.Name{CommonName: "r1node"}
	u := func(s string) []*url.URL { v, _ := url.Parse(s); return []*url.URL{v} }
	cases := []struct {
		name string
		tmpl *x509.CertificateRequest
		body []string // logicals in the body
		code string
	}{
		{"CN of another node", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "math-replica1"}}, nil, CodeCSRNotGranted},
		{"extra subject attribute", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "r1node", Organization: []string{"root"}}}, nil, CodeCSRNotGranted},
		{"logical outside the grant in the CSR", &x509.CertificateRequest{Subject: cn, URIs: u("naylence://*.evil.org")}, nil, CodeLogicalNotGranted},
		{"logical * in the CSR", &x509.CertificateRequest{Subject: cn, URIs: u("naylence://*")}, nil, CodeLogicalNotGranted},
		{"logical * in the body", &x509.CertificateRequest{Subject: cn}, []string{"*"}, CodeLogicalNotGranted},
		{"another node's SPIFFE ID", &x509.CertificateRequest{Subject: cn, URIs: u(otherID)}, nil, CodeCSRNotGranted},
		{"an https URI", &x509.CertificateRequest{Subject: cn, URIs: u("https://sentinel")}, nil, CodeCSRNotGranted},
		{"a DNS name", &x509.CertificateRequest{Subject: cn, DNSNames: []string{"sentinel"}}, nil, CodeCSRNotGranted},
		{"an IP address", &x509.CertificateRequest{Subject: cn, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, nil, CodeCSRNotGranted},
		{"a CA certificate", &x509.CertificateRequest{Subject: cn, ExtraExtensions: []pkix.Extension{
			ext(t, oidBasic, struct{ IsCA bool }{true})}}, nil, CodeCSRNotGranted},
		{"certificate signing", &x509.CertificateRequest{Subject: cn, ExtraExtensions: []pkix.Extension{
			ext(t, oidKeyUsage, asn1.BitString{Bytes: []byte{0x04}, BitLength: 6})}}, nil, CodeCSRNotGranted},
		{"code signing", &x509.CertificateRequest{Subject: cn, ExtraExtensions: []pkix.Extension{
			ext(t, oidEKU, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}})}}, nil, CodeCSRNotGranted},
		{"the node-id extension", &x509.CertificateRequest{Subject: cn, ExtraExtensions: []pkix.Extension{
			{Id: security.OIDNodeID, Value: []byte("math-replica1")}}}, nil, CodeCSRNotGranted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.metric(t, "fame_ca_refused_total", `reason="`+tc.code+`"`)
			status, b := f.post(t, signBody(csrWith(t, tc.tmpl), "r1node", "", tc.body), grant)
			var e struct{ Detail, Code string }
			_ = json.Unmarshal(b, &e)
			if status != http.StatusForbidden || e.Code != tc.code || e.Detail == "" {
				t.Fatalf("got %d %s, want 403 %s", status, b, tc.code)
			}
			if f.metric(t, "fame_ca_refused_total", `reason="`+tc.code+`"`) == before {
				t.Fatal("fame_ca_refused_total did not move")
			}
		})
	}

	// Within the grant: the reference's CSR shape, its own SPIFFE ID, a
	// non-CA basicConstraints. The certificate carries the ticket's
	// identity and logicals only.
	for name, tmpl := range map[string]*x509.CertificateRequest{
		"reference shape": {Subject: cn, URIs: u("naylence://*.fame.fabric")},
		"own SPIFFE ID":   {URIs: u(ownID)},
		"end entity": {Subject: cn, ExtraExtensions: []pkix.Extension{ext(t, oidBasic, struct{ IsCA bool }{false}),
			ext(t, oidEKU, []asn1.ObjectIdentifier{oidClient})}},
	} {
		status, b := f.post(t, signBody(csrWith(t, tmpl), "r1node", "", nil), grant)
		if status != 200 {
			t.Fatalf("%s: %d %s", name, status, b)
		}
		var r SignResponse
		_ = json.Unmarshal(b, &r)
		chain, err := ParseCertsPEM([]byte(r.CertificateChainPEM))
		if err != nil {
			t.Fatal(err)
		}
		id, err := security.VerifyNodeSVID(chain, security.NewTrustBundle([]*x509.Certificate{f.ca.Root}), time.Now())
		if err != nil || id.SPIFFEID.String() != ownID || id.NodeID != "r1node" || !slices.Equal(id.Logicals, []string{"*.fame.fabric"}) {
			t.Fatalf("%s: identity %+v %v", name, id, err)
		}
		if leaf := chain[0]; len(leaf.DNSNames) > 0 || len(leaf.URIs) != 1 || leaf.IsCA {
			t.Fatalf("%s: leaf names %v %v CA %v", name, leaf.DNSNames, leaf.URIs, leaf.IsCA)
		}
	}
	if f.metric(t, "fame_ca_issued_total", "") != "3" {
		t.Fatalf("fame_ca_issued_total = %s", f.metric(t, "fame_ca_issued_total", ""))
	}
}

// A CA grant whose path is not its system id's (a forged-looking or buggy
// welcome) certifies nothing.
func TestSignInconsistentGrant(t *testing.T) {
	f := newCAFixture(t)
	grant, _, _ := f.issuer.IssueCA(ticket.Placement{SystemID: "r1node", AssignedPath: "/Cb8WVCC4ML5RsFM/math-replica1"})
	status, b := f.post(t, signBody(csrPEM(t, edKey(t)), "r1node", "", nil), grant)
	if status != http.StatusForbidden || !strings.Contains(string(b), CodePathNotGranted) {
		t.Fatalf("got %d %s", status, b)
	}
}
