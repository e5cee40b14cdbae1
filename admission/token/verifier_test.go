package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Unix(1_800_000_000, 0)

func mustKey(t testing.TB) *jose.SigningKey {
	t.Helper()
	k, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "https://oauth2-server", "aud": "fame.fabric", "sub": "client-1",
		"scope": "node.connect other", "iat": t0.Unix(), "nbf": t0.Unix(),
		"exp": float64(t0.Unix()) + 3600.25, "jti": "j1",
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func sign(t testing.TB, k *jose.SigningKey, c jwt.MapClaims) string {
	t.Helper()
	s, err := k.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), "client-1", "client-2", 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestVerifierReasons(t *testing.T) {
	key := mustKey(t)
	other := mustKey(t)
	impostor := &jose.SigningKey{Kid: key.Kid, Private: other.Private} // right kid, wrong key
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, goodClaims())
	hs.Header["kid"] = key.Kid
	hsTok, _ := hs.SignedString([]byte("secret"))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims())
	none.Header["kid"] = key.Kid
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	cases := []struct {
		name string
		tok  string
		want Reason // "" = accepted
	}{
		{"valid, float exp", sign(t, key, goodClaims()), ""},
		{"valid, aud array", sign(t, key, with(goodClaims(), "aud", []string{"x", "fame.fabric"})), ""},
		{"valid, scopes array", sign(t, key, with(goodClaims(), "scope", nil, "scopes", []string{"node.connect"})), ""},
		{"expired", sign(t, key, with(goodClaims(), "exp", t0.Add(-time.Minute).Unix())), ReasonExpired},
		{"expired within leeway", sign(t, key, with(goodClaims(), "exp", t0.Add(-10*time.Second).Unix())), ""},
		{"no exp", sign(t, key, with(goodClaims(), "exp", nil)), ReasonMalformed},
		{"not yet valid", sign(t, key, with(goodClaims(), "nbf", t0.Add(time.Hour).Unix())), ReasonNotYetValid},
		{"wrong audience", sign(t, key, with(goodClaims(), "aud", "other")), ReasonWrongAudience},
		{"no audience", sign(t, key, with(goodClaims(), "aud", nil)), ReasonWrongAudience},
		{"wrong issuer", sign(t, key, with(goodClaims(), "iss", "https://evil")), ReasonWrongIssuer},
		{"missing scope", sign(t, key, with(goodClaims(), "scope", "other")), ReasonMissingScope},
		{"tampered payload", tamper(sign(t, key, goodClaims())), ReasonBadSignature},
		{"impostor key", sign(t, impostor, goodClaims()), ReasonBadSignature},
		{"unknown kid", sign(t, other, goodClaims()), ReasonUnknownKey},
		{"HS256", hsTok, ReasonBadSignature},
		{"alg none", noneTok, ReasonBadSignature},
		{"garbage", "not.a.jwt", ReasonMalformed},
		{"empty", "", ReasonMalformed},
		{"huge", strings.Repeat("a", MaxTokenSize+1), ReasonMalformed},
	}
	v, err := NewVerifier(Config{
		Keys: StaticKeys{key.Kid: key.Public()}, Issuer: "https://oauth2-server",
		Audience: "fame.fabric", RequiredScopes: []string{ScopeNodeConnect},
		Now: func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.tok)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.Subject != "client-1" {
					t.Fatalf("sub = %q", c.Subject)
				}
				return
			}
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
			if !errors.Is(err, &Error{Reason: tc.want}) {
				t.Fatalf("errors.Is does not match reason %q", tc.want)
			}
		})
	}
}

func TestVerifierReplay(t *testing.T) {
	key := mustKey(t)
	now := t0
	v, err := NewVerifier(Config{
		Keys: StaticKeys{key.Kid: key.Public()}, Issuer: "https://oauth2-server",
		Replay: NewReplayGuard(10), Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, key, goodClaims())
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("first use refused: %v", err)
	}
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use: err = %v, want replayed", err)
	}
	if _, err := v.Verify(context.Background(), sign(t, key, with(goodClaims(), "jti", nil))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no jti: err = %v, want malformed", err)
	}
}

func TestReplayGuardBounded(t *testing.T) {
	g := NewReplayGuard(2)
	now := t0
	if !g.Use("a", now.Add(time.Minute), now) || !g.Use("b", now.Add(time.Hour), now) {
		t.Fatal("fresh ids refused")
	}
	if g.Use("c", now.Add(time.Hour), now) {
		t.Fatal("full table accepted a new id (should fail closed)")
	}
	now = now.Add(2 * time.Minute) // "a" expired: room again
	if !g.Use("c", now.Add(time.Hour), now) {
		t.Fatal("id refused after an expired one could be purged")
	}
	if g.Use("b", now.Add(time.Hour), now) {
		t.Fatal("replayed unexpired id accepted")
	}
	if g.Len() != 2 {
		t.Fatalf("len = %d, want 2", g.Len())
	}
}

func TestBearerFromHeader(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer ": "", "": ""} {
		got, ok := BearerFromHeader(h)
		if got != want || ok != (want != "") {
			t.Errorf("BearerFromHeader(%q) = %q,%v", h, got, ok)
		}
	}
}

func FuzzVerify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	sk := jose.FromPrivate(key)
	good, _ := sk.Sign(goodClaims())
	f.Add(good)
	f.Add(tamper(good))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	v, err := NewVerifier(Config{
		Keys: StaticKeys{sk.Kid: sk.Public()}, Issuer: "https://oauth2-server",
		Audience: "fame.fabric", Now: func() time.Time { return t0 },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if c.Issuer != "https://oauth2-server" || c.ExpiresAt == nil {
			t.Fatalf("accepted token with claims %+v", c)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	key := mustKey(b)
	v, _ := NewVerifier(Config{Keys: StaticKeys{key.Kid: key.Public()}, Issuer: "https://oauth2-server",
		Audience: "fame.fabric", RequiredScopes: []string{ScopeNodeConnect}, Now: func() time.Time { return t0 }})
	tok := sign(b, key, goodClaims())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
