package token

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenSize bounds what the parser will look at; real tokens are < 2 KiB.
const MaxTokenSize = 16 << 10

// Config says what a Verifier accepts.
type Config struct {
	Keys     KeySource // required
	Issuer   string    // required: tokens must carry exactly this iss
	Audience string    // if set, aud must contain it
	// RequiredScopes must all be granted (scope string or scopes array).
	RequiredScopes []string
	// Leeway tolerates clock skew on exp/nbf/iat; default 30 s.
	Leeway time.Duration
	// Replay, if set, refuses a second use of the same jti (tokens without
	// a jti are then refused as malformed).
	Replay *ReplayGuard
	// Now overrides the clock (tests).
	Now func() time.Time
}

// Verifier checks tokens against a Config. Safe for concurrent use.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
}

var errNoKeys = errors.New("token: Config.Keys is required")
var errNoIssuer = errors.New("token: Config.Issuer is required")

// NewVerifier validates cfg and builds a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Keys == nil {
		return nil, errNoKeys
	}
	if cfg.Issuer == "" {
		return nil, errNoIssuer
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	return &Verifier{cfg: cfg, parser: p}, nil
}

// Verify checks raw and returns its common claims.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c := &Claims{}
	if err := v.VerifyInto(ctx, raw, c); err != nil {
		return nil, err
	}
	return c, nil
}

// VerifyInto checks raw and decodes its claims into dst (a struct embedding
// Claims). dst is only meaningful when the error is nil.
func (v *Verifier) VerifyInto(ctx context.Context, raw string, dst Carrier) error {
	if len(raw) > MaxTokenSize {
		return refuse(ReasonMalformed, "token longer than %d bytes", MaxTokenSize)
	}
	_, err := v.parser.ParseWithClaims(raw, dst, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, refuse(ReasonMalformed, "no kid in header")
		}
		return v.cfg.Keys.Key(ctx, kid)
	})
	if err != nil {
		return classify(err)
	}
	c := dst.Common()
	if c.Issuer != v.cfg.Issuer {
		return refuse(ReasonWrongIssuer, "iss %q, want %q", c.Issuer, v.cfg.Issuer)
	}
	if v.cfg.Audience != "" && !contains(c.Audience, v.cfg.Audience) {
		return refuse(ReasonWrongAudience, "aud %q, want %q", []string(c.Audience), v.cfg.Audience)
	}
	for _, s := range v.cfg.RequiredScopes {
		if !c.HasScope(s) {
			return refuse(ReasonMissingScope, "scope %q not granted (have %q)", s, strings.Join(c.GrantedScopes(), " "))
		}
	}
	if v.cfg.Replay != nil {
		if c.ID == "" {
			return refuse(ReasonMalformed, "no jti on a one-shot token")
		}
		if !v.cfg.Replay.Use(c.ID, c.ExpiresAt.Add(v.cfg.Leeway), v.cfg.Now()) {
			return refuse(ReasonReplayed, "jti %q already used", c.ID)
		}
	}
	return nil
}

// classify maps jwt/v5 errors to reasons. Our own *Error (from the key
// lookup) wins; otherwise the first failed check in verification order.
func classify(err error) error {
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	order := []struct {
		target error
		reason Reason
	}{
		{jwt.ErrTokenMalformed, ReasonMalformed},
		{jwt.ErrTokenSignatureInvalid, ReasonBadSignature},
		{jwt.ErrTokenUnverifiable, ReasonBadSignature},
		{jwt.ErrTokenRequiredClaimMissing, ReasonMalformed},
		{jwt.ErrTokenExpired, ReasonExpired},
		{jwt.ErrTokenNotValidYet, ReasonNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ReasonNotYetValid},
	}
	for _, o := range order {
		if errors.Is(err, o.target) {
			return &Error{Reason: o.reason, Err: err}
		}
	}
	return &Error{Reason: ReasonMalformed, Err: fmt.Errorf("unclassified: %w", err)}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
