package security

import (
	"crypto/ed25519"
	"errors"
	"testing"
)

// TestParseSigningJWKS: only usable Ed25519 signing keys come out; foreign or broken keys are
// skipped one by one; only a document that is not a key set is an error.
func TestParseSigningJWKS(t *testing.T) {
	const x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" // RFC 8037 A.2
	doc := `{"keys":[
		{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"good","alg":"EdDSA","use":"sig"},
		{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"nouse"},
		{"kty":"OKP","crv":"X25519","x":"` + x + `","kid":"enc","use":"enc"},
		{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"encuse","use":"enc"},
		{"kty":"OKP","crv":"Ed25519","x":"` + x + `=","kid":"padded"},
		{"kty":"OKP","crv":"Ed25519","x":"short","kid":"short"},
		{"kty":"OKP","crv":"Ed25519","x":"` + x + `"},
		{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"badalg","alg":7},
		1, "x", null]}`
	keys, err := ParseSigningJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || len(keys["good"]) != ed25519.PublicKeySize || len(keys["nouse"]) != ed25519.PublicKeySize {
		t.Fatalf("keys = %v, want good and nouse", keys)
	}
	for _, bad := range []string{"{", "[]", `{"keys":{}}`} {
		if _, err := ParseSigningJWKS([]byte(bad)); !errors.Is(err, ErrBadJWKS) {
			t.Errorf("%s: err = %v, want ErrBadJWKS", bad, err)
		}
	}
}

func FuzzParseSigningJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[1,"x",null]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseSigningJWKS(b)
		if err != nil {
			return
		}
		for kid, pub := range keys {
			if kid == "" || len(pub) != ed25519.PublicKeySize {
				t.Fatalf("accepted unusable key %q", kid)
			}
		}
	})
}
