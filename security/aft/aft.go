package aft

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AFT (Affinity Tag) tokens: compact JWS minted by a replica and attached to
// the SecureAccept / KeyAnnounce it sends back to a client (meta.set.aft),
// stating "client_sid is served by replica sid until exp". The sentinel
// verifies them and pins the client session to the replica the envelope came
// from. See security.md §8.

// MaxTTL is the longest lifetime a replica may request (max_ttl_sec).
const MaxTTL = 7200 * time.Second

// maxTokenLen refuses absurd tokens before any decoding work; real AFTs are
// about 300 bytes.
const maxTokenLen = 4096

// Scopes used by replicas.
const (
	ScopeNode = "node"
	ScopeFlow = "flow"
	ScopeSess = "sess"
)

// Claims is a verified (or, for alg "none", accepted) token.
type Claims struct {
	SID       string // replica node sid
	ClientSID string // client session the token pins; "" if absent/null
	Scope     string // "node", "flow", "sess" or ""
	Exp       int64  // unix seconds (fractional exp truncated)
	IssuedAt  int64  // unix seconds, 0 if absent (TS replicas add iat)
	KID       string // header kid
	Signed    bool   // true: EdDSA verified ("trusted"); false: alg none ("low-trust")
}

// KeyLookup returns the Ed25519 public key registered under a signature kid.
type KeyLookup func(kid string) (ed25519.PublicKey, bool)

// signedClaims is the claim set of a signed AFT; field order is the wire
// order of the reference signer.
type signedClaims struct {
	SID       string `json:"sid"`
	Exp       int64  `json:"exp"`
	Scope     string `json:"scp,omitempty"`
	ClientSID string `json:"client_sid,omitempty"`
	noValidation
}

// unsignedClaims mirrors the reference unsigned signer, which writes every
// field, with JSON null for missing ones.
type unsignedClaims struct {
	SID       string  `json:"sid"`
	Exp       int64   `json:"exp"`
	Scope     *string `json:"scp"`
	ClientSID *string `json:"client_sid"`
}

// wireClaims decodes whatever a peer sent; exp may be a float.
type wireClaims struct {
	SID       string           `json:"sid"`
	Exp       *jwt.NumericDate `json:"exp"`
	Scope     string           `json:"scp"`
	ClientSID string           `json:"client_sid"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	noValidation
}

// noValidation satisfies jwt.Claims; Verify checks expiry itself so that
// the rule is exactly the reference's (exp <= now is expired) and the error
// carries a Reason.
type noValidation struct{}

func (noValidation) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (noValidation) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (noValidation) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (noValidation) GetIssuer() (string, error)                   { return "", nil }
func (noValidation) GetSubject() (string, error)                  { return "", nil }
func (noValidation) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

var errBadTTL = errors.New("aft: ttl must be positive")

func aftExp(ttl time.Duration, now time.Time) (int64, error) {
	if ttl <= 0 {
		return 0, errBadTTL
	}
	if ttl > MaxTTL {
		ttl = MaxTTL
	}
	return now.Add(ttl).Unix(), nil
}

// Sign mints an EdDSA-signed AFT exactly as the reference replica does:
// header {"alg":"EdDSA","kid":kid,"typ":"JWT"}, claims {sid, exp, scp,
// client_sid} with exp = now + ttl (ttl capped at MaxTTL). Empty scope or
// clientSID are left out.
func Sign(priv ed25519.PrivateKey, kid, replicaSID, clientSID, scope string, ttl time.Duration, now time.Time) (string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("aft: sign: private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	exp, err := aftExp(ttl, now)
	if err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, signedClaims{SID: replicaSID, Exp: exp, Scope: scope, ClientSID: clientSID})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		return "", fmt.Errorf("aft: sign: %w", err)
	}
	return s, nil
}

// Unsigned mints the alg "none" token a replica without a key sends at
// level signed-optional: header {"alg":"none","kid":kid}, claims with scope
// "node", an empty signature part. An empty clientSID is written as null,
// which is what the reference always writes (it drops client_sid, a bug we
// reproduce only when asked to).
func Unsigned(kid, replicaSID, clientSID string, ttl time.Duration, now time.Time) (string, error) {
	exp, err := aftExp(ttl, now)
	if err != nil {
		return "", err
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}{"none", kid})
	if err != nil {
		return "", fmt.Errorf("aft: unsigned header: %w", err)
	}
	scope := ScopeNode
	c := unsignedClaims{SID: replicaSID, Exp: exp, Scope: &scope}
	if clientSID != "" {
		c.ClientSID = &clientSID
	}
	claims, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("aft: unsigned claims: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(claims) + ".", nil
}

// parser only decodes; every check is made by Verify in a fixed order.
var parser = jwt.NewParser(jwt.WithoutClaimsValidation())

// Verify checks token for an envelope whose sid is expectedSID (the
// replica's sid), at the given level, with keys resolving header kids.
//
// Order: level sid-only refuses everything; then structure (malformed);
// algorithm (EdDSA, or none where allowed); expiry (exp <= now is expired);
// sid; and only then the signature, so that garbage costs no crypto.
// At signed-optional an unsigned token is accepted (Signed=false) but a
// signed one must verify: a signature that cannot be checked is refused, not
// downgraded. An unknown level is treated as strict.
func Verify(token, expectedSID string, level Level, keys KeyLookup, now time.Time) (Claims, error) {
	if level == LevelSIDOnly {
		return Claims{}, refuse(ReasonSIDOnly, nil, "")
	}
	if len(token) > maxTokenLen {
		return Claims{}, refuse(ReasonMalformed, nil, "token is %d bytes", len(token))
	}
	if err := checkSegments(token); err != nil {
		return Claims{}, refuse(ReasonMalformed, err, "")
	}
	var wc wireClaims
	tok, _, err := parser.ParseUnverified(token, &wc)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenUnverifiable) { // alg missing or not registered
			return Claims{}, refuse(ReasonUnsupportedAlg, err, "")
		}
		return Claims{}, refuse(ReasonMalformed, err, "")
	}
	alg := tok.Method.Alg()
	kid, _ := tok.Header["kid"].(string)
	switch alg {
	case jwt.SigningMethodEdDSA.Alg():
	case jwt.SigningMethodNone.Alg():
		if level != LevelSignedOptional {
			return Claims{}, refuse(ReasonAlgNone, nil, "")
		}
	default:
		return Claims{}, refuse(ReasonUnsupportedAlg, nil, "alg %q", alg)
	}
	if wc.Exp == nil {
		return Claims{}, refuse(ReasonMalformed, nil, "no exp claim")
	}
	if !now.Before(wc.Exp.Time) {
		return Claims{}, refuse(ReasonExpired, nil, "exp %s, now %s", wc.Exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if wc.SID != expectedSID {
		return Claims{}, refuse(ReasonWrongSID, nil, "token sid %q, envelope sid %q", wc.SID, expectedSID)
	}
	signingString := token[:strings.LastIndexByte(token, '.')]
	signed := alg != jwt.SigningMethodNone.Alg()
	if signed {
		var pub ed25519.PublicKey
		ok := false
		if keys != nil && kid != "" {
			pub, ok = keys(kid)
		}
		if !ok {
			return Claims{}, refuse(ReasonUnknownKID, nil, "kid %q", kid)
		}
		if err := tok.Method.Verify(signingString, tok.Signature, pub); err != nil {
			return Claims{}, refuse(ReasonBadSignature, err, "kid %q", kid)
		}
	} else if len(tok.Signature) != 0 {
		return Claims{}, refuse(ReasonMalformed, nil, "alg none with a signature")
	}
	c := Claims{
		SID:       wc.SID,
		ClientSID: wc.ClientSID,
		Scope:     wc.Scope,
		Exp:       wc.Exp.Unix(),
		KID:       kid,
		Signed:    signed,
	}
	if wc.IssuedAt != nil {
		c.IssuedAt = wc.IssuedAt.Unix()
	}
	return c, nil
}
