package sentinel

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/envelope"
)

// testGrants mirrors the compose stack: replicas bind the math pool under their prefix, the
// client takes any other id and binds nothing.
const testGrants = "sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric\n" +
	"sub=math-client system_ids=*"

// TestDirectGrants plays each credential against the grants: the refusal code on the wire,
// the counted reason, and the log line naming the peer.
func TestDirectGrants(t *testing.T) {
	f := newOAuthFixture(t)
	ts := startDirectSentinelEnv(t, f, false, map[string]string{envAdmissionGrants: testGrants})
	tokFor := func(sub string) string {
		return f.mint(t, f.key, func(c *token.Claims) { c.Subject, c.ClientID = sub, sub })
	}
	cases := []struct {
		name     string
		sub, id  string
		declared []string
		bind     string // bound after a successful attach
		code     string // attach refusal code; "" = attach accepted
		bindCode string // bind refusal code; "" = bind accepted
		reason   string // fame_security_refusals_total label that must move
	}{
		{name: "no grant", sub: "stranger", id: "strangerNode", code: codeNoAdmissionGrant, reason: refusalNoGrant},
		{name: "id outside grant", sub: "math-client", id: "math-replica1", code: codeSystemIDNotGranted, reason: refusalSystemIDNotGranted},
		{name: "id reserved case-folded", sub: "math-client", id: "Math-Replica1", code: codeSystemIDNotGranted, reason: refusalSystemIDNotGranted},
		{name: "replica id outside its prefix", sub: "math-replicas", id: "agent7", code: codeSystemIDNotGranted, reason: refusalSystemIDNotGranted},
		{name: "logical outside grant", sub: "math-client", id: "clientL", declared: []string{"fame.fabric"}, code: codeLogicalNotGranted, reason: refusalLogicalNotGranted},
		{name: "replica logical outside grant", sub: "math-replicas", id: "math-replicaL", declared: []string{"*.fame.fabric", "other.org"}, code: codeLogicalNotGranted, reason: refusalLogicalNotGranted},
		// "*" is what a plain SDK client declares: accepted, but it widens nothing.
		{name: "bind outside grant", sub: "math-client", id: "clientB", declared: []string{"*"}, bind: "math@fame.fabric", bindCode: envelope.CodeUnauthorized, reason: refusalBindUnauthorized},
		{name: "bind outside grant, nothing declared", sub: "math-client", id: "clientN", bind: "math@fame.fabric", bindCode: envelope.CodeUnauthorized, reason: refusalBindUnauthorized},
		{name: "replica wildcard declared, bind outside grant", sub: "math-replicas", id: "math-replicaW", declared: []string{"*"}, bind: "math@other.org", bindCode: envelope.CodeUnauthorized, reason: refusalBindUnauthorized},
		{name: "replica bind outside its domain", sub: "math-replicas", id: "math-replicaD", declared: []string{"*.fame.fabric"}, bind: "math@other.org", bindCode: envelope.CodeUnauthorized, reason: refusalBindUnauthorized},
		{name: "replica within grant", sub: "math-replicas", id: "math-replica2", declared: []string{"*.fame.fabric"}, bind: "math@fame.fabric"},
		{name: "client within grant", sub: "math-client", id: "clientOK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := 0.0
			if tc.reason != "" {
				before = refusalCount(t, ts, tc.reason)
			}
			p := admitted(t, dialBearer(t, ts, tc.id, tokFor(tc.sub)), tc.id)
			na := &envelope.NodeAttach{OriginType: "downstream", SystemID: tc.id, InstanceID: envelope.NewID(), AcceptedLogicals: tc.declared}
			if tc.code != "" {
				ack := attachRefused(t, p, na, nil)
				if ack.Code != tc.code {
					t.Fatalf("attach refused with %q (%s), want %s", ack.Code, ack.Reason, tc.code)
				}
				if !strings.Contains(ack.Reason, tc.sub) {
					t.Fatalf("reason %q does not name the client", ack.Reason)
				}
			} else {
				p.attach(tc.declared...)
				if tc.bind != "" {
					b := p.bind(tc.bind)
					if tc.bindCode == "" && !b.OK {
						t.Fatalf("bind refused: %+v", b)
					}
					if tc.bindCode != "" && (b.OK || b.Code != tc.bindCode) {
						t.Fatalf("bind %s: ok=%v code %q, want %s", tc.bind, b.OK, b.Code, tc.bindCode)
					}
				}
			}
			if tc.reason != "" {
				if got := refusalCount(t, ts, tc.reason); got != before+1 {
					t.Fatalf("fame_security_refusals_total{reason=%q} = %v, want %v", tc.reason, got, before+1)
				}
				waitLog(t, ts, "reason="+tc.reason+" system_id="+tc.id)
			}
		})
	}
}

// TestDirectGrantsClientIDFallback: a token without sub is matched by its client_id, and the
// Principal carries the grant's logicals (none for a plain client).
func TestDirectGrantsClientIDFallback(t *testing.T) {
	key, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	a := staticDirect(t, key)
	gs, err := welcome.ParseGrants(testGrants)
	if err != nil {
		t.Fatal(err)
	}
	set, err := welcome.NewGrantSet(gs, "S1")
	if err != nil {
		t.Fatal(err)
	}
	a.grants.Store(set)
	sign := func(sub, clientID string) string {
		now := time.Now()
		tok, err := key.Sign(&token.Claims{Issuer: "https://issuer", Subject: sub, ClientID: clientID,
			Audience: token.Audience{testAudience}, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), Scope: token.ScopeNodeConnect})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	p, err := a.Authenticate(context.Background(), sign("", "math-replicas"), "math-replica1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "math-replicas" || p.grant == nil || !p.grant.ok || !slices.Equal(p.Logicals, []string{"*.fame.fabric"}) {
		t.Fatalf("principal %+v grant %+v", p, p.grant)
	}
	p, err = a.Authenticate(context.Background(), sign("math-client", ""), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Logicals == nil || len(p.Logicals) != 0 || !p.grant.ok {
		t.Fatalf("client principal %+v: want a grant with no logicals (non-nil, empty)", p)
	}
	// A subject without a grant gets through the token check (the refusal is said at NodeAttach)
	// but binds nothing meanwhile.
	p, err = a.Authenticate(context.Background(), sign("stranger", ""), "x")
	if err != nil || p.grant.ok || p.Logicals == nil || len(p.Logicals) != 0 {
		t.Fatalf("stranger: %+v %v", p, err)
	}
}

// TestDirectGrantsConfig: grants come from the variable and the file, bad grants stop the
// sentinel at start, and no grants means a warning.
func TestDirectGrantsConfig(t *testing.T) {
	base := map[string]string{"FAME_JWT_TRUSTED_ISSUER": "https://issuer", "FAME_JWKS_URL": "https://issuer/jwks"}
	file := filepath.Join(t.TempDir(), "grants")
	if err := os.WriteFile(file, []byte("sub=math-client system_ids=* # the client\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		env     map[string]string
		grants  int
		wantErr bool
		log     string
	}{
		{"none", nil, 0, false, "any valid token may attach with any system id"},
		{"inline", map[string]string{envAdmissionGrants: testGrants}, 2, false, "per-client grants"},
		{"file and inline", map[string]string{envAdmissionGrants: "sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric",
			envAdmissionGrants + "_FILE": file}, 2, false, "per-client grants"},
		{"logical star", map[string]string{envAdmissionGrants: "sub=a system_ids=* logicals=*"}, 0, true, ""},
		{"overlap", map[string]string{envAdmissionGrants: "sub=a system_ids=r*; sub=b system_ids=r1"}, 0, true, ""},
		{"syntax", map[string]string{envAdmissionGrants: "sub=a ids=x"}, 0, true, ""},
		{"missing file", map[string]string{envAdmissionGrants + "_FILE": file + ".missing"}, 0, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			s := &Sentinel{opts: Options{ProfileOptions: ProfileOptions{AdmissionProfile: AdmissionDirect}}, path: "/S1",
				log: slog.New(slog.NewTextHandler(&logs, nil))}
			a, err := authenticatorFor(s, admissionFromEnv(func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return base[k]
			}))
			if tc.wantErr {
				if !errors.Is(err, ErrAdmissionConfig) || !strings.Contains(err.Error(), envAdmissionGrants) {
					t.Fatalf("err = %v, want an %v naming %s", err, ErrAdmissionConfig, envAdmissionGrants)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := a.(*directAuth)
			if n := 0; d.grants.Load() != nil {
				n = d.grants.Load().Len()
				if n != tc.grants {
					t.Fatalf("%d grants, want %d", n, tc.grants)
				}
			} else if tc.grants != 0 {
				t.Fatal("no grants loaded")
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Fatalf("log lacks %q:\n%s", tc.log, logs.String())
			}
		})
	}
}
