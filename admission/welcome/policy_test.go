package welcome

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
	"github.com/golang-jwt/jwt/v5"
)

// testGrants: client-1 owns kid1, n1, node-* and the sentinel's own id
// (exact); client-b owns b-*; anyid takes random ids.
var testGrants = []ClientGrant{
	{Subject: "client-1", SystemIDs: []string{"kid1", "n1", "node-*", target}, Logicals: []string{"*.fame.fabric", "fame.fabric"}},
	{Subject: "client-b", SystemIDs: []string{"b-*"}, Logicals: []string{"b.example.org"}},
	{Subject: "anyid", SystemIDs: []string{"*"}},
}

func sub(s string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c["sub"] = s } }

// metric reads one sample of the service's /metrics ("" labels: unlabelled).
func (f *fixture) metric(t *testing.T, name, labels string) string {
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

// A client asks for what another client was granted, or beyond its own
// grant: refused with 403 and a code, counted, and nothing issued.
func TestHelloOutsideGrantRefused(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name    string
		subject string
		hello   envelope.NodeHello
		code    string
	}{
		{"A asks for B's exact id", "client-b", envelope.NodeHello{SystemID: "kid1"}, CodeSystemIDNotGranted},
		{"A asks for an id under B's prefix", "client-1", envelope.NodeHello{SystemID: "b-7"}, CodeSystemIDNotGranted},
		{"wildcard client asks for a reserved id", "anyid", envelope.NodeHello{SystemID: "node-3"}, CodeSystemIDNotGranted},
		{"wildcard client asks for a reserved id in other case", "anyid", envelope.NodeHello{SystemID: "NODE-3"}, CodeSystemIDNotGranted},
		{"wildcard client asks for the sentinel's id in other case", "anyid", envelope.NodeHello{SystemID: strings.ToLower(target)}, CodeSystemIDNotGranted},
		{"wildcard client asks for the sentinel's id", "anyid", envelope.NodeHello{SystemID: target}, CodeSystemIDNotGranted},
		{"prefix owner asks for the sentinel's id", "client-b", envelope.NodeHello{SystemID: target}, CodeSystemIDNotGranted},
		{"logical outside the grant", "client-b", envelope.NodeHello{SystemID: "b-1", Logicals: []string{"*.fame.fabric"}}, CodeLogicalNotGranted},
		{"one logical of several outside", "client-1", envelope.NodeHello{SystemID: "kid1", Logicals: []string{"fame.fabric", "evil.org"}}, CodeLogicalNotGranted},
		{"logical *", "client-1", envelope.NodeHello{SystemID: "kid1", Logicals: []string{"*"}}, CodeLogicalNotGranted},
		{"client with no logicals asks for one", "anyid", envelope.NodeHello{SystemID: "c9", Logicals: []string{"fame.fabric"}}, CodeLogicalNotGranted},
		{"subject without a grant", "stranger", envelope.NodeHello{SystemID: "c9"}, CodeNoGrant},
		{"token without a subject", "", envelope.NodeHello{SystemID: "c9"}, CodeNoGrant},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.metric(t, "fame_welcome_refused_total", `reason="`+tc.code+`"`)
			resp, b := f.post(t, helloBody(t, &tc.hello), f.bearer(t, sub(tc.subject)))
			var e struct{ Detail, Code string }
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != http.StatusForbidden || e.Code != tc.code || e.Detail == "" {
				t.Fatalf("got %d %s, want 403 code %s", resp.StatusCode, b, tc.code)
			}
			if strings.Contains(string(b), "token") && strings.Contains(string(b), "eyJ") {
				t.Fatalf("a refusal carries a token: %s", b)
			}
			after := f.metric(t, "fame_welcome_refused_total", `reason="`+tc.code+`"`)
			if after == before {
				t.Fatalf("fame_welcome_refused_total{reason=%q} stayed at %s", tc.code, after)
			}
		})
	}
}

// Within the grant: the ticket carries exactly the id and logicals asked
// for, and the client that was admitted.
func TestHelloWithinGrant(t *testing.T) {
	f := newFixture(t, nil)
	tv, err := ticket.NewTicketVerifier(ticket.VerifierConfig{
		Keys: token.StaticKeys{f.svc.Key().Kid: f.svc.Key().Public()}, Issuer: "https://welcome/fame/welcome"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, subject string
		hello         envelope.NodeHello
		wantPrefix    string
	}{
		{"exact id, narrower logical", "client-1", envelope.NodeHello{SystemID: "kid1", Logicals: []string{"math.fame.fabric"}}, "kid1"},
		{"prefix id, pool logical", "client-1", envelope.NodeHello{SystemID: "node-1", Logicals: []string{"*.fame.fabric"}}, "node-1"},
		{"random id for the wildcard client", "anyid", envelope.NodeHello{SystemID: "Zq3kd0"}, "Zq3kd0"},
		{"no id: one under the prefix", "client-b", envelope.NodeHello{}, "b-"},
		{"no id: a random one", "anyid", envelope.NodeHello{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.metric(t, "fame_welcome_admitted_total", "")
			resp, b := f.post(t, helloBody(t, &tc.hello), f.bearer(t, sub(tc.subject)))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			w, gs := decodeWelcome(t, b)
			if !strings.HasPrefix(w.SystemID, tc.wantPrefix) || !slices.Equal(w.AcceptedLogicals, tc.hello.Logicals) || len(w.RejectedLogicals) != 0 {
				t.Fatalf("welcome: %+v", w)
			}
			tk, err := tv.Verify(gs[0].Auth.TokenProvider.Token, ticket.AttachInfo{SystemID: w.SystemID, SentinelPath: "/" + target})
			if err != nil {
				t.Fatal(err)
			}
			if tk.ClientID != tc.subject || !slices.Equal(tk.AcceptedLogicals, append([]string{}, tc.hello.Logicals...)) {
				t.Fatalf("ticket: %+v", tk.Claims)
			}
			if f.metric(t, "fame_welcome_admitted_total", "") == before {
				t.Fatal("fame_welcome_admitted_total did not move")
			}
		})
	}
}

func TestGrantConfigValidation(t *testing.T) {
	g := func(s ...ClientGrant) []ClientGrant { return s }
	cases := []struct {
		name   string
		grants []ClientGrant
		want   error
	}{
		{"logical *", g(ClientGrant{Subject: "a", SystemIDs: []string{"a"}, Logicals: []string{"*"}}), ErrGrantWildcard},
		{"no subject", g(ClientGrant{SystemIDs: []string{"a"}}), ErrGrantSyntax},
		{"no system ids", g(ClientGrant{Subject: "a"}), ErrGrantSyntax},
		{"two grants for one subject", g(ClientGrant{Subject: "a", SystemIDs: []string{"a"}}, ClientGrant{Subject: "a", SystemIDs: []string{"b"}}), ErrGrantSyntax},
		{"bad pattern", g(ClientGrant{Subject: "a", SystemIDs: []string{"a*b"}}), ErrGrantSyntax},
		{"path in pattern", g(ClientGrant{Subject: "a", SystemIDs: []string{"a/b*"}}), ErrGrantSyntax},
		{"bad logical", g(ClientGrant{Subject: "a", SystemIDs: []string{"a"}, Logicals: []string{"x_y!"}}), ErrGrantSyntax},
		{"same exact id", g(ClientGrant{Subject: "a", SystemIDs: []string{"r1"}}, ClientGrant{Subject: "b", SystemIDs: []string{"r1"}}), ErrGrantOverlap},
		{"prefix covers exact", g(ClientGrant{Subject: "a", SystemIDs: []string{"r*"}}, ClientGrant{Subject: "b", SystemIDs: []string{"r1"}}), ErrGrantOverlap},
		{"prefixes differing in case", g(ClientGrant{Subject: "a", SystemIDs: []string{"Math-*"}}, ClientGrant{Subject: "b", SystemIDs: []string{"math-r*"}}), ErrGrantOverlap},
		{"nested prefixes", g(ClientGrant{Subject: "a", SystemIDs: []string{"math-*"}}, ClientGrant{Subject: "b", SystemIDs: []string{"math-replica*"}}), ErrGrantOverlap},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{TargetSystemID: target, AttachURL: attachURL, Verifier: okVerifier(t), Grants: tc.grants})
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
		})
	}
	for name, cfg := range map[string]Config{
		"authenticated without grants":   {Verifier: okVerifier(t)},
		"anonymous with grants":          {AllowAnonymous: true, Grants: testGrants},
		"allow list next to grants":      {Verifier: okVerifier(t), Grants: testGrants, AllowedLogicals: []string{"fame.fabric"}},
		"anonymous allow list with *":    {AllowAnonymous: true, AllowedLogicals: []string{"fame.fabric", "*"}},
		"anonymous allow list malformed": {AllowAnonymous: true, AllowedLogicals: []string{"a..b"}},
	} {
		cfg.TargetSystemID, cfg.AttachURL = target, attachURL
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Two wildcard clients and disjoint prefixes are fine.
	if _, err := New(Config{TargetSystemID: target, AttachURL: attachURL, Verifier: okVerifier(t), Grants: g(
		ClientGrant{Subject: "a", SystemIDs: []string{"*", "ra*"}}, ClientGrant{Subject: "b", SystemIDs: []string{"*", "rb*"}})}); err != nil {
		t.Fatal(err)
	}
}

func okVerifier(t testing.TB) *token.Verifier {
	t.Helper()
	v, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{}, Issuer: oauthIss})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseGrants(t *testing.T) {
	file := filepath.Join(t.TempDir(), "grants")
	if err := os.WriteFile(file, []byte("# replicas\nsub=r system_ids=r1,r2 logicals=fame.fabric\n\nsub=c system_ids=*  # clients\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FAME_WELCOME_GRANTS": "sub=x system_id=x1;", "FAME_WELCOME_GRANTS_FILE": file}
	gs, err := grantsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []ClientGrant{{Subject: "x", SystemIDs: []string{"x1"}}, {Subject: "r", SystemIDs: []string{"r1", "r2"}, Logicals: []string{"fame.fabric"}},
		{Subject: "c", SystemIDs: []string{"*"}}}
	if len(gs) != len(want) {
		t.Fatalf("grants %+v", gs)
	}
	for i := range want {
		if gs[i].Subject != want[i].Subject || !slices.Equal(gs[i].SystemIDs, want[i].SystemIDs) || !slices.Equal(gs[i].Logicals, want[i].Logicals) {
			t.Fatalf("grant %d = %+v, want %+v", i, gs[i], want[i])
		}
	}
	for _, bad := range []string{"sub=a system_ids", "sub=a colour=red", "sub=a sub=b"} {
		if _, err := ParseGrants(bad); !errors.Is(err, ErrGrantSyntax) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	env["FAME_WELCOME_GRANTS_FILE"] = filepath.Join(t.TempDir(), "missing")
	if _, err := grantsFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("missing grants file accepted")
	}
}
