package ticket

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/token"
	"github.com/golang-jwt/jwt/v5"
)

const (
	iss      = "https://welcome/fame/welcome"
	sentinel = "/Cb8WVCC4ML5RsFM"
)

var t0 = time.Unix(1795406901, 0)

func setup(t testing.TB, mut func(*VerifierConfig)) (*Issuer, *TicketVerifier) {
	t.Helper()
	k, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return t0 }
	cfg := VerifierConfig{Keys: token.StaticKeys{k.Kid: k.Public()}, Issuer: iss, Now: now}
	if mut != nil {
		mut(&cfg)
	}
	v, err := NewTicketVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Key: k, Issuer: iss, Now: now}, v
}

func placement(sid string) Placement {
	return Placement{SystemID: sid, InstanceID: "inst1", ParentPath: sentinel,
		AssignedPath: sentinel + "/" + sid, AcceptedLogicals: []string{"*.fame.fabric"}}
}

func TestTicketVerify(t *testing.T) {
	is, v := setup(t, nil)
	good, _, err := is.IssueAttach(placement("r1node"))
	if err != nil {
		t.Fatal(err)
	}
	caGrant, _, _ := is.IssueCA(placement("r1node"))
	badPath := placement("r1node")
	badPath.AssignedPath = "/elsewhere/r1node"
	badPathTok, _, _ := is.IssueAttach(badPath)
	oldIs := *is
	oldIs.Now = func() time.Time { return t0.Add(-time.Hour) }
	expired, _, _ := oldIs.IssueAttach(placement("r1node"))
	otherIs, _ := setup(t, nil)
	foreign, _, _ := otherIs.IssueAttach(placement("r1node"))
	wrongIss := *is
	wrongIss.Issuer = "https://oauth2-server"
	wrongIssTok, _, _ := wrongIss.IssueAttach(placement("r1node"))

	ok := AttachInfo{SystemID: "r1node", InstanceID: "inst1", SentinelPath: sentinel}
	cases := []struct {
		name   string
		tok    string
		attach AttachInfo
		reason token.Reason
		err    error
	}{
		{"valid", good, ok, "", nil},
		{"valid without instance", good, AttachInfo{SystemID: "r1node", SentinelPath: sentinel}, "", nil},
		{"other system id", good, AttachInfo{SystemID: "intruder", InstanceID: "inst1", SentinelPath: sentinel}, "", ErrSystemMismatch},
		{"other instance", good, AttachInfo{SystemID: "r1node", InstanceID: "inst2", SentinelPath: sentinel}, "", ErrInstanceMismatch},
		{"other sentinel", good, AttachInfo{SystemID: "r1node", SentinelPath: "/OtherSentinel"}, token.ReasonWrongAudience, nil},
		{"no sentinel path", good, AttachInfo{SystemID: "r1node"}, token.ReasonWrongAudience, nil},
		{"CA grant as ticket", caGrant, ok, token.ReasonWrongAudience, nil},
		{"assigned path elsewhere", badPathTok, ok, "", ErrPathMismatch},
		{"expired", expired, ok, token.ReasonExpired, nil},
		{"foreign key", foreign, ok, token.ReasonUnknownKey, nil},
		{"wrong issuer", wrongIssTok, ok, token.ReasonWrongIssuer, nil},
		{"garbage", "x.y.z", ok, token.ReasonMalformed, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := v.Verify(tc.tok, tc.attach)
			switch {
			case tc.reason == "" && tc.err == nil:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tk.SystemID != "r1node" || tk.Raw != tc.tok || !tk.AllowsLogical("math@*.fame.fabric") {
					t.Fatalf("ticket = %+v", tk)
				}
			case tc.reason != "":
				if got := token.ReasonOf(err); got != tc.reason {
					t.Fatalf("reason = %q (%v), want %q", got, err, tc.reason)
				}
			default:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			}
		})
	}
}

func TestTicketOneShot(t *testing.T) {
	is, v := setup(t, func(c *VerifierConfig) { c.Replay = token.NewReplayGuard(16) })
	tok, _, _ := is.IssueAttach(placement("r1node"))
	info := AttachInfo{SystemID: "r1node", SentinelPath: sentinel}
	if _, err := v.Verify(tok, AttachInfo{SystemID: "intruder", SentinelPath: sentinel}); !errors.Is(err, ErrSystemMismatch) {
		t.Fatalf("err = %v", err)
	}
	if _, err := v.Verify(tok, info); err != nil {
		t.Fatalf("refused after a failed attempt by someone else: %v", err)
	}
	if _, err := v.Verify(tok, info); !errors.Is(err, token.ErrReplayed) {
		t.Fatalf("second use: err = %v, want replayed", err)
	}
}

// The reference's A.7 claims (float exp, string aud, no sub, no jti) verify.
func TestReferenceClaimsShape(t *testing.T) {
	k, _ := jose.Generate()
	raw := `{"iss":"https://welcome/fame/welcome","iat":1795406901,"nbf":1795406901,"exp":1795410501.267349,"aud":"/Cb8WVCC4ML5RsFM","system_id":"r1node","parent_path":"/Cb8WVCC4ML5RsFM","assigned_path":"/Cb8WVCC4ML5RsFM/r1node","accepted_logicals":["*.fame.fabric"],"instance_id":"inst1"}`
	var mc jwt.MapClaims
	if err := json.Unmarshal([]byte(raw), &mc); err != nil {
		t.Fatal(err)
	}
	tok, _ := k.Sign(mc)
	v, _ := NewTicketVerifier(VerifierConfig{Keys: token.StaticKeys{k.Kid: k.Public()}, Issuer: iss,
		Now: func() time.Time { return t0.Add(3599 * time.Second) }})
	tk, err := v.Verify(tok, AttachInfo{SystemID: "r1node", InstanceID: "inst1", SentinelPath: sentinel})
	if err != nil {
		t.Fatalf("reference-shaped ticket refused: %v", err)
	}
	if tk.ParentPath != sentinel || len(tk.AcceptedLogicals) != 1 || tk.ExpiresAt.Unix() != 1795410501 {
		t.Fatalf("claims = %+v", tk.Claims)
	}
}

// Issued tickets have the reference's claim names and a string aud.
func TestIssuedClaimsShape(t *testing.T) {
	is, _ := setup(t, nil)
	tok, _, _ := is.IssueAttach(placement("r1node"))
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "iat", "nbf", "exp", "jti", "system_id", "parent_path", "assigned_path", "accepted_logicals", "instance_id"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
	if m["aud"] != sentinel {
		t.Errorf("aud = %#v, want the string %q", m["aud"], sentinel)
	}
	if _, ok := m["sub"]; ok {
		t.Error("attach ticket has a sub claim; the reference has none")
	}
}

func TestAllowsLogical(t *testing.T) {
	c := func(logicals ...string) *Claims {
		return &Claims{AssignedPath: sentinel + "/r1node", AcceptedLogicals: logicals}
	}
	cases := []struct {
		claims *Claims
		addr   string
		want   bool
	}{
		{c("*.fame.fabric"), "math@*.fame.fabric", true},
		{c("*.fame.fabric"), "math@fame.fabric", true},
		{c("*.fame.fabric"), "math@r1node.fame.fabric", true},
		{c("*.fame.fabric"), "math@other.fabric", false},
		{c("*.fame.fabric"), "math@evilfame.fabric", false},
		{c("fame.fabric"), "math@fame.fabric", true},
		{c("fame.fabric"), "math@api.fame.fabric/v1/x", true},
		{c("api.fame.fabric"), "math@fame.fabric", false},
		{c("*"), "anything@any.where", true},
		{c(), "math@fame.fabric", false},
		{c(), "__sys__@/Cb8WVCC4ML5RsFM/r1node", true},
		{c(), "svc@/Cb8WVCC4ML5RsFM/r1node/inner", true},
		{c(), "svc@/Cb8WVCC4ML5RsFM/r1nodeX", false},
		{c(), "svc@/Cb8WVCC4ML5RsFM/other", false},
		{c("*"), "not an address", false},
	}
	for _, tc := range cases {
		if got := tc.claims.AllowsLogical(tc.addr); got != tc.want {
			t.Errorf("%v.AllowsLogical(%q) = %v, want %v", tc.claims.AcceptedLogicals, tc.addr, got, tc.want)
		}
	}
}

func BenchmarkTicketVerify(b *testing.B) {
	is, v := setup(b, nil)
	tok, _, _ := is.IssueAttach(placement("r1node"))
	info := AttachInfo{SystemID: "r1node", InstanceID: "inst1", SentinelPath: sentinel}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, info); err != nil {
			b.Fatal(err)
		}
	}
}
