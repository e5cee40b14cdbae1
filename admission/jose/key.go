package jose

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fame-go/fame/security"
)

// ErrBadKeyFile is returned when a key file exists but does not hold an
// Ed25519 PKCS#8 private key.
var ErrBadKeyFile = errors.New("jose: key file does not hold an Ed25519 private key")

// SigningKey is an Ed25519 private key with its key id.
type SigningKey struct {
	Kid     string
	Private ed25519.PrivateKey
}

// Generate returns a fresh ephemeral key.
func Generate() (*SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("jose: generate ed25519 key: %w", err)
	}
	return FromPrivate(priv), nil
}

// FromPrivate wraps an existing key; the kid is its thumbprint.
func FromPrivate(priv ed25519.PrivateKey) *SigningKey {
	pub := priv.Public().(ed25519.PublicKey)
	return &SigningKey{Kid: Thumbprint(pub), Private: priv}
}

// KeyOrFile returns key when it is set, else LoadOrCreate(path): the services take either an
// injected key (tests) or a key file (deployments).
func KeyOrFile(key *SigningKey, path string) (*SigningKey, error) {
	if key != nil {
		return key, nil
	}
	return LoadOrCreate(path)
}

// LoadOrCreate reads the key at path, or creates it (mode 0600, parent
// directories 0700) when the file does not exist. An empty path yields an
// ephemeral key.
func LoadOrCreate(path string) (*SigningKey, error) {
	if path == "" {
		return Generate()
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		return parsePEM(b, path)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("jose: read key %s: %w", path, err)
	}
	k, err := Generate()
	if err != nil {
		return nil, err
	}
	if err := WritePrivateKeyPEM(path, k.Private); err != nil {
		return nil, err
	}
	return k, nil
}

// WritePrivateKeyPEM writes any private key as PKCS#8 PEM with mode 0600.
// It refuses to overwrite an existing file so a second process racing on
// the same path cannot replace a key that is already in use.
func WritePrivateKeyPEM(path string, key crypto.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("jose: marshal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("jose: create key dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("jose: create key file %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return fmt.Errorf("jose: write key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("jose: close key file %s: %w", path, err)
	}
	return nil
}

func parsePEM(b []byte, path string) (*SigningKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block", ErrBadKeyFile, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKeyFile, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: key type %T", ErrBadKeyFile, path, k)
	}
	return FromPrivate(priv), nil
}

// Public returns the public half.
func (k *SigningKey) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// JWK returns the public key in the reference's signing-JWK shape.
func (k *SigningKey) JWK() security.JWK { return security.SigningJWK(k.Public(), k.Kid) }

// SetOf builds the JWKS served for the given keys (verifiers read it with
// security.ParseSigningJWKS).
func SetOf(keys ...*SigningKey) security.JWKS {
	s := security.JWKS{Keys: make([]security.JWK, 0, len(keys))}
	for _, k := range keys {
		s.Keys = append(s.Keys, k.JWK())
	}
	return s
}

// Sign encodes claims as a compact JWS with header {alg: EdDSA, kid, typ: JWT}.
func (k *SigningKey) Sign(claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = k.Kid
	s, err := t.SignedString(k.Private)
	if err != nil {
		return "", fmt.Errorf("jose: sign token: %w", err)
	}
	return s, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an Ed25519 public key.
func Thumbprint(pub ed25519.PublicKey) string {
	// Members in lexicographic order, no whitespace, as RFC 7638 §3.2 requires.
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + b64(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
