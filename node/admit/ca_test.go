package admit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

func TestRequestCertificateVerifies(t *testing.T) {
	s := newStack(t, stackOpts{})
	g, err := s.welcomeConfig(t, "r1node", "*.fame.fabric").Hello(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key, err := security.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := security.CreateCSR(key, g.SystemID, g.AcceptedLogicals)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := RequestCertificate(t.Context(), g.CAURL, g.CAToken, csr, g.SystemID, g.AssignedPath, g.AcceptedLogicals)
	if err != nil {
		t.Fatal(err)
	}
	id, err := security.VerifyNodeCert(chain, s.trust, envelope.SecureDigest(g.AssignedPath), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID != "r1node" || len(id.Logicals) != 1 || id.Logicals[0] != "*.fame.fabric" || !id.PublicKey.Equal(key.Public()) {
		t.Fatalf("identity: %+v", id)
	}

	// The body shape is exactly what the CA decodes.
	var seen []byte
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		n, _ := r.Body.Read(buf)
		seen = buf[:n]
		w.WriteHeader(http.StatusTeapot)
	}))
	defer echo.Close()
	_, _ = RequestCertificate(t.Context(), echo.URL, "tok", csr, "r1node", "/p/r1node", []string{"a.fame.fabric"})
	req, parsed, err := ca.DecodeSignRequest(seen)
	if err != nil || req.RequesterID != "r1node" || req.PhysicalPath != "/p/r1node" || len(req.Logicals) != 1 ||
		!key.Public().(ed25519.PublicKey).Equal(parsed.PublicKey) {
		t.Fatalf("DecodeSignRequest: %+v %v", req, err)
	}
}

func TestRequestCertificateErrors(t *testing.T) {
	s := newStack(t, stackOpts{})
	g, err := s.welcomeConfig(t, "r1node", "*.fame.fabric").Hello(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := security.NewNodeKey()
	csr, _ := security.CreateCSR(key, g.SystemID, g.AcceptedLogicals)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"certificate_chain_pem":"not a pem"}`))
	}))
	defer garbage.Close()
	tests := []struct {
		name                string
		url, tok, req, path string
		csr                 []byte
		want                error
		status              int
	}{
		{"no token", g.CAURL, "", "r1node", g.AssignedPath, csr, ErrUnauthorized, 401},
		{"another requester", g.CAURL, g.CAToken, "r2node", "", csr, ErrUnauthorized, 403},
		{"bad CSR", g.CAURL, g.CAToken, "r1node", g.AssignedPath, []byte("junk"), ErrRejected, 400},
		{"garbage chain", garbage.URL, "t", "r1node", "", csr, ErrBadResponse, 0},
		{"bad URL", "ftp://ca", "t", "r1node", "", csr, ErrConfig, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RequestCertificate(t.Context(), tc.url, tc.tok, tc.csr, tc.req, tc.path, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var he *HTTPError
			if tc.status != 0 && (!errors.As(err, &he) || he.Status != tc.status || he.Op != "sign") {
				t.Fatalf("HTTPError %+v, want status %d", he, tc.status)
			}
		})
	}
}

func TestCertSourceRenewsAtTwoThirds(t *testing.T) {
	clk := newFakeClock()
	s := newStack(t, stackOpts{clock: clk.Now, certTTL: 30 * time.Second, ticketTTL: time.Hour})
	ws, err := NewWelcomeTokenSource(s.welcomeConfig(t, "r1node", "*.fame.fabric"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewCertSource(CertConfig{Grants: ws, Trust: s.trust, HTTPClient: s.cSrv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	first, err := cs.Certificate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first.SID != envelope.SecureDigest("/"+testSentinel+"/r1node") || !first.Key.Equal(cs.Key()) {
		t.Fatalf("certificate: sid %s", first.SID)
	}
	clk.Advance(19 * time.Second)
	if c, _ := cs.Certificate(t.Context()); c != first || s.signs.Load() != 1 {
		t.Fatalf("before 2/3: renewed=%v signs=%d", c != first, s.signs.Load())
	}
	clk.Advance(time.Second)
	c, err := cs.Certificate(t.Context())
	if err != nil || c == first || s.signs.Load() != 2 {
		t.Fatalf("at 2/3: %v renewed=%v signs=%d", err, c != first, s.signs.Load())
	}
	if _, err := security.VerifyNodeCert(c.ChainPEM, s.trust, c.SID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if !c.Key.Equal(first.Key) {
		t.Fatal("key changed on renewal")
	}
}

// A CA that certifies a different key, or a chain that does not verify
// against the trust bundle, is refused.
func TestCertSourceChecksIssuedChain(t *testing.T) {
	s := newStack(t, stackOpts{})
	other := newStack(t, stackOpts{})
	ws, err := NewWelcomeTokenSource(s.welcomeConfig(t, "r1node", "*.fame.fabric"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewCertSource(CertConfig{Grants: ws, Trust: other.trust})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Certificate(t.Context()); !errors.Is(err, ErrBadResponse) || !errors.Is(err, security.ErrUntrustedCert) {
		t.Fatalf("foreign CA: %v", err)
	}
	// Swap the key: the chain is for the CSR's key, which is not Key().
	g, _ := ws.Grant(t.Context())
	k2, _ := security.NewNodeKey()
	csr, _ := security.CreateCSR(k2, g.SystemID, g.AcceptedLogicals)
	chain, err := RequestCertificate(t.Context(), g.CAURL, g.CAToken, csr, g.SystemID, g.AssignedPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.check(chain, g); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("other key accepted: %v", err)
	}
}

// Run delivers the first certificate and each renewal (real clock, 3 s
// certificates, so this takes about 4.5 s).
func TestCertSourceRun(t *testing.T) {
	s := newStack(t, stackOpts{certTTL: 3 * time.Second, ticketTTL: 3 * time.Second, tokenTTL: 3 * time.Second})
	ws, err := NewWelcomeTokenSource(s.welcomeConfig(t, "r1node", "*.fame.fabric"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewCertSource(CertConfig{Grants: ws, Trust: s.trust})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4500*time.Millisecond)
	defer cancel()
	var renewals atomic.Int64
	var bad atomic.Value
	err = cs.Run(ctx, func(c *Certificate) {
		renewals.Add(1)
		if _, err := security.VerifyNodeCert(c.ChainPEM, s.trust, c.SID, time.Now()); err != nil {
			bad.Store(err)
		}
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run returned %v", err)
	}
	if e := bad.Load(); e != nil {
		t.Fatalf("delivered certificate does not verify: %v", e)
	}
	// First at 0 s, renewals at ~2 s and ~4 s.
	if n := renewals.Load(); n < 2 || n > 4 {
		t.Fatalf("%d certificates delivered in 4.5 s with a 3 s TTL, want 2..4", n)
	}
}
