package jose

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fame-go/fame/security"
)

func TestLoadOrCreatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "sign.key")
	k1, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	k2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Kid != k2.Kid || !k1.Private.Equal(k2.Private) {
		t.Fatal("reloaded key differs from the created one")
	}
	k3, err := LoadOrCreate("")
	if err != nil {
		t.Fatal(err)
	}
	if k3.Kid == k1.Kid {
		t.Fatal("ephemeral key has the persisted key's kid")
	}
}

func TestLoadOrCreateRejectsGarbage(t *testing.T) {
	for name, content := range map[string]string{
		"not pem":   "hello",
		"bad pkcs8": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreate(path); !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("err = %v, want ErrBadKeyFile", err)
			}
		})
	}
}

func TestSignAndParseJWKS(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	set := SetOf(k)
	// The served document, byte for byte (members in the order the reference writes them).
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(k.Public()) + `","kid":"` + k.Kid + `","alg":"EdDSA","use":"sig"}]}`
	if string(b) != want {
		t.Fatalf("JWKS\n got %s\nwant %s", b, want)
	}
	set.Keys = append(set.Keys,
		security.JWK{Kty: "OKP", Crv: "X25519", X: set.Keys[0].X, Kid: "enc", Use: "enc"},
		security.JWK{Kty: "OKP", Crv: "Ed25519", X: "short", Kid: "bad"},
	)
	b, _ = json.Marshal(set)
	keys, err := security.ParseSigningJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[k.Kid].Equal(k.Public()) {
		t.Fatalf("parsed keys = %v, want only %s", keys, k.Kid)
	}
	tok, err := k.Sign(jwt.MapClaims{"sub": "x"})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) { return keys[tk.Header["kid"].(string)], nil },
		jwt.WithValidMethods([]string{"EdDSA"}))
	if err != nil || !parsed.Valid {
		t.Fatalf("token does not verify with the JWKS key: %v", err)
	}
}

func TestThumbprintRFC8037(t *testing.T) {
	// RFC 8037 appendix A.3 gives the thumbprint of its example Ed25519 key.
	k := security.JWK{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", Kid: "k"}
	pub, err := k.Ed25519()
	if err != nil {
		t.Fatalf("RFC 8037 key rejected: %v", err)
	}
	if got, want := Thumbprint(pub), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}
