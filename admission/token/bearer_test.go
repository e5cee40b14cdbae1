package token

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestAuthenticate: the one bearer check of the admission endpoints answers a missing token,
// a refused token and a good one with the codes, details and WWW-Authenticate headers the CA
// and the welcome service send.
func TestAuthenticate(t *testing.T) {
	key := mustKey(t)
	v, err := NewVerifier(Config{Keys: StaticKeys{key.Kid: key.Public()}, Issuer: "https://oauth2-server",
		Audience: "fame.fabric", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, key, goodClaims())
	for _, tc := range []struct {
		name, header, code, detail, www string
	}{
		{"missing", "", ReasonMissingToken, "Authentication failed: no bearer token", "Bearer"},
		{"other scheme", "Basic " + good, ReasonMissingToken, "Authentication failed: no bearer token", "Bearer"},
		{"tampered", "Bearer " + tamper(good), string(ReasonBadSignature), "Authentication failed: bad_signature", `Bearer error="invalid_token"`},
		{"good", "bearer " + good, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			var c Claims
			ref := v.Authenticate(w, r, &c, time.Second)
			if got := w.Header().Get("WWW-Authenticate"); got != tc.www {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.www)
			}
			if tc.code == "" {
				if ref != nil {
					t.Fatalf("refused: %+v", ref)
				}
				if c.Issuer != "https://oauth2-server" {
					t.Fatalf("claims not filled: %+v", c)
				}
				return
			}
			if ref == nil || ref.Code != tc.code || ref.Detail != tc.detail {
				t.Fatalf("refusal %+v, want code %q detail %q", ref, tc.code, tc.detail)
			}
			if (ref.Err == nil) != (tc.code == ReasonMissingToken) {
				t.Fatalf("refusal error %v", ref.Err)
			}
		})
	}
}
