package security

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// JWK is a public key in the shapes nodes exchange (security.md §1.4): OKP Ed25519 "sig"
// keys (optionally with an x5c chain in strict-overlay) and OKP X25519 "enc" keys. SID and
// PhysicalPath are what key stores add before re-serving a key in a KeyAnnounce.
type JWK struct {
	Kty          string   `json:"kty"`
	Crv          string   `json:"crv,omitempty"`
	X            string   `json:"x,omitempty"`
	Y            string   `json:"y,omitempty"` // EC
	N            string   `json:"n,omitempty"` // RSA
	E            string   `json:"e,omitempty"` // RSA
	Kid          string   `json:"kid"`
	Alg          string   `json:"alg,omitempty"`
	Use          string   `json:"use"`
	X5C          []string `json:"x5c,omitempty"`
	SID          string   `json:"sid,omitempty"`
	PhysicalPath string   `json:"physical_path,omitempty"`
}

// JWKS is a JSON Web Key Set document, as token issuers (the admission services) serve it.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// ParseSigningJWKS decodes a token issuer's JWKS document and returns its Ed25519 signing keys
// by kid. Keys of other types or uses (the reference welcome JWKS also lists an X25519
// encryption key) and keys that do not decode are skipped, not errors: one foreign key must
// not make the whole set unusable. Only a document that is not a JSON object with a keys list
// is an error (ErrBadJWKS).
func ParseSigningJWKS(b []byte) (map[string]ed25519.PublicKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJWKS, err)
	}
	out := make(map[string]ed25519.PublicKey, len(doc.Keys))
	for _, raw := range doc.Keys {
		// Only the members this check reads: a set is judged key by key on them alone, so an
		// odd extra member (x5c, sid) of one key does not change which keys are usable.
		var k struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
		}
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		if k.Kid == "" || k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		// Strict unpadded base64url here (unlike Ed25519(), which tolerates padding): this is
		// what the issuers' consumers always accepted.
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		out[k.Kid] = ed25519.PublicKey(x)
	}
	return out, nil
}

// SigningJWK is the reference shape of a node's Ed25519 signing key.
func SigningJWK(pub ed25519.PublicKey, kid string) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: SigAlgEdDSA, Use: "sig"}
}

// EncryptionJWK is the reference shape of a node's X25519 encryption key.
func EncryptionJWK(pub []byte, kid string) JWK {
	return JWK{Kty: "OKP", Crv: "X25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: "ECDH-ES", Use: "enc"}
}

// ParseJWK decodes and validates one JWK as the reference's jwk_validation does: kid, kty and
// use required; kty RSA/EC/OKP with their members; OKP curves Ed25519/Ed448 only for sig and
// X25519/X448 only for enc; x5c entries must be standard base64.
func ParseJWK(raw []byte) (JWK, error) {
	var j JWK
	if err := json.Unmarshal(raw, &j); err != nil {
		return JWK{}, fmt.Errorf("%w: %v", ErrBadJWK, err)
	}
	return j, j.Validate()
}

// Validate applies the reference's receive-side checks.
func (j JWK) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: kid %q: %s", ErrBadJWK, j.Kid, fmt.Sprintf(format, a...))
	}
	if j.Kid == "" {
		return bad("missing kid")
	}
	if j.Use != "sig" && j.Use != "enc" {
		return bad("use must be sig or enc, got %q", j.Use)
	}
	switch j.Kty {
	case "RSA":
		if j.N == "" || j.E == "" {
			return bad("RSA key needs n and e")
		}
	case "EC":
		if j.Crv == "" || j.X == "" || j.Y == "" {
			return bad("EC key needs crv, x and y")
		}
	case "OKP":
		if j.X == "" {
			return bad("OKP key needs x")
		}
		switch j.Crv {
		case "Ed25519", "Ed448":
			if j.Use != "sig" {
				return bad("%s key must have use sig", j.Crv)
			}
		case "X25519", "X448":
			if j.Use != "enc" {
				return bad("%s key must have use enc", j.Crv)
			}
		default:
			return bad("unsupported OKP curve %q", j.Crv)
		}
	default:
		return bad("unsupported kty %q", j.Kty)
	}
	for i, c := range j.X5C {
		if _, err := base64.StdEncoding.DecodeString(c); err != nil {
			return bad("x5c[%d] is not standard base64", i)
		}
	}
	return nil
}

// Ed25519 returns the raw Ed25519 public key of a signing JWK (from x; a certificate-bearing
// key is checked against its leaf by the key store).
func (j JWK) Ed25519() (ed25519.PublicKey, error) {
	if j.Kty != "OKP" || j.Crv != "Ed25519" {
		return nil, fmt.Errorf("%w: kid %q is not an Ed25519 key", ErrBadJWK, j.Kid)
	}
	b, err := decodeB64URL(j.X)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: kid %q: bad x", ErrBadJWK, j.Kid)
	}
	return ed25519.PublicKey(b), nil
}

// X25519 returns the raw 32-byte X25519 public key of an encryption JWK.
func (j JWK) X25519() ([]byte, error) {
	if j.Kty != "OKP" || j.Crv != "X25519" {
		return nil, fmt.Errorf("%w: kid %q is not an X25519 key", ErrBadJWK, j.Kid)
	}
	b, err := decodeB64URL(j.X)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: kid %q: bad x", ErrBadJWK, j.Kid)
	}
	return b, nil
}

// MarshalJSON writes the members in the reference's order (§1.4) so our announces look like
// the reference's: kty, crv, x, kid, then alg/use in the order the reference uses for the
// key's use, then x5c, sid, physical_path.
func (j JWK) MarshalJSON() ([]byte, error) {
	var o rawObject
	add := func(k, v string) {
		if v != "" {
			o = append(o, rawMember{k, quoteJSON(v)})
		}
	}
	add("kty", j.Kty)
	add("crv", j.Crv)
	add("x", j.X)
	add("y", j.Y)
	add("n", j.N)
	add("e", j.E)
	add("kid", j.Kid)
	if j.Use == "enc" {
		add("use", j.Use)
		add("alg", j.Alg)
	} else {
		add("alg", j.Alg)
		add("use", j.Use)
	}
	if len(j.X5C) > 0 {
		b, err := json.Marshal(j.X5C)
		if err != nil {
			return nil, err
		}
		o = append(o, rawMember{"x5c", b})
	}
	add("sid", j.SID)
	add("physical_path", j.PhysicalPath)
	return o.marshal(), nil
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
