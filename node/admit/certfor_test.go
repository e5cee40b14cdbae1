package admit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/envelope"
)

// switchGrants is the welcome grant of whichever placement the test picks: a node whose
// sentinel died is placed on another one by its next hello.
type switchGrants struct {
	srcs []*WelcomeTokenSource
	cur  atomic.Int32
}

func (g *switchGrants) Grant(ctx context.Context) (*Grant, error) {
	return g.srcs[g.cur.Load()].Grant(ctx)
}

// secondWelcome is a welcome service of the same stack (same key and issuer, so the CA
// honours its grants) placing nodes on another sentinel, target.
func (s *stack) secondWelcome(t *testing.T, target string) *httptest.Server {
	t.Helper()
	bearer, err := token.NewVerifier(token.Config{
		Keys: token.StaticKeys{s.oKey.Kid: s.oKey.Public()}, Issuer: s.oSrv.URL, Audience: testAudience,
		RequiredScopes: []string{DefaultScope}, Leeway: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := welcome.New(welcome.Config{
		TargetSystemID: target, AttachURL: "ws://" + target + "/fame/v1/attach/ws/downstream",
		CAServiceURL: s.cSrv.URL + "/fame/v1/ca", Issuer: s.welcomeIssuer(), Verifier: bearer, Key: s.wKey,
		Logger: quietLogger(),
		Grants: []welcome.ClientGrant{{Subject: testClient, SystemIDs: []string{"*"}, Logicals: []string{"*.fame.fabric"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return srv
}

// TestCertSourceCertificateForNewPlacement: a node placed on another sentinel gets a
// certificate for its new path's sid at once (not at the old one's renewal point), for the
// same key; asking for a path the current grant does not place it at is ErrPlacement.
func TestCertSourceCertificateForNewPlacement(t *testing.T) {
	s := newStack(t, stackOpts{})
	first, err := NewWelcomeTokenSource(s.welcomeConfig(t, "r1node", "*.fame.fabric"))
	if err != nil {
		t.Fatal(err)
	}
	w2 := s.welcomeConfig(t, "r1node", "*.fame.fabric")
	w2.ServiceURL = s.secondWelcome(t, "s2").URL + welcome.HelloPath
	second, err := NewWelcomeTokenSource(w2)
	if err != nil {
		t.Fatal(err)
	}
	grants := &switchGrants{srcs: []*WelcomeTokenSource{first, second}}
	cs, err := NewCertSource(CertConfig{Grants: grants, Trust: s.trust, HTTPClient: s.cSrv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	path1, path2 := "/"+testSentinel+"/r1node", "/s2/r1node"

	c1, err := cs.CertificateFor(t.Context(), path1)
	if err != nil {
		t.Fatal(err)
	}
	if c1.SID != envelope.SecureDigest(path1) || s.signs.Load() != 1 {
		t.Fatalf("first: sid %s, %d signs", c1.SID, s.signs.Load())
	}
	if c, err := cs.CertificateFor(t.Context(), path1); err != nil || c != c1 || s.signs.Load() != 1 {
		t.Fatalf("same placement: new certificate %v, %d signs, %v", c != c1, s.signs.Load(), err)
	}

	grants.cur.Store(1) // the node's sentinel died; its next hello placed it on s2
	c2, err := cs.CertificateFor(t.Context(), path2)
	if err != nil {
		t.Fatal(err)
	}
	if c2.SID != envelope.SecureDigest(path2) || s.signs.Load() != 2 {
		t.Fatalf("moved: sid %s, want %s's; %d signs", c2.SID, path2, s.signs.Load())
	}
	leaf := c2.Chain[0].PublicKey.(ed25519.PublicKey)
	if !leaf.Equal(cs.Key().Public()) || !c2.Key.Equal(c1.Key) {
		t.Fatal("the certificate for the new path is for another key: the kid would change")
	}
	if c, err := cs.Certificate(t.Context()); err != nil || c != c2 {
		t.Fatalf("Certificate after the move: the new one %v, %v", c == c2, err)
	}

	// A path the grant does not place us at cannot be certified: the CA signs the grant's.
	signs := s.signs.Load()
	if _, err := cs.CertificateFor(t.Context(), path1); !errors.Is(err, ErrPlacement) {
		t.Fatalf("path outside the grant: %v, want ErrPlacement", err)
	}
	if s.signs.Load() != signs+1 {
		t.Fatalf("%d signs, want one more attempt", s.signs.Load()-signs)
	}
}
