package jose

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadJWKS is returned when a JWKS document cannot be decoded at all.
var ErrBadJWKS = errors.New("jose: malformed JWKS")

// JWK is the subset of RFC 7517 members the reference emits for OKP keys.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// JWKS is a JSON Web Key Set document.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// SetOf builds the JWKS served for the given keys.
func SetOf(keys ...*SigningKey) JWKS {
	s := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		s.Keys = append(s.Keys, k.JWK())
	}
	return s
}

// ParseJWKS decodes a JWKS document and returns its Ed25519 signing keys by
// kid. Keys of other types or uses (the welcome JWKS also lists an X25519
// encryption key) are skipped, not errors: one foreign key must not make the
// whole set unusable.
func ParseJWKS(b []byte) (map[string]ed25519.PublicKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJWKS, err)
	}
	out := make(map[string]ed25519.PublicKey, len(doc.Keys))
	for _, raw := range doc.Keys {
		var k JWK
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		if pub, ok := k.Ed25519(); ok {
			out[k.Kid] = pub
		}
	}
	return out, nil
}

// Ed25519 returns the key if the JWK is a usable Ed25519 signing key.
func (k JWK) Ed25519() (ed25519.PublicKey, bool) {
	if k.Kid == "" || k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") {
		return nil, false
	}
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(x), true
}
