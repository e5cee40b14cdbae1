package token

import (
	"strings"
	"time"
)

// OAuth2Settings are the reference's "oauth2" authorizer settings: issuer
// FAME_JWT_TRUSTED_ISSUER, JWKS FAME_JWKS_URL (default
// <issuer>/.well-known/jwks.json), audience FAME_JWT_AUDIENCE, required
// scope node.connect.
type OAuth2Settings struct {
	Issuer         string
	JWKSURL        string
	Audience       string
	RequiredScopes []string
}

// ScopeNodeConnect is the scope a node needs to be admitted.
const ScopeNodeConnect = "node.connect"

// OAuth2SettingsFromEnv reads the reference's variables.
func OAuth2SettingsFromEnv(getenv func(string) string) OAuth2Settings {
	s := OAuth2Settings{
		Issuer:         getenv("FAME_JWT_TRUSTED_ISSUER"),
		JWKSURL:        getenv("FAME_JWKS_URL"),
		Audience:       getenv("FAME_JWT_AUDIENCE"),
		RequiredScopes: []string{ScopeNodeConnect},
	}
	if s.JWKSURL == "" {
		s.JWKSURL = DefaultJWKSURL(s.Issuer)
	}
	return s
}

// DefaultJWKSURL is where an issuer publishes its keys when no JWKS URL is configured (the
// reference's default): <issuer>/.well-known/jwks.json; "" for no issuer.
func DefaultJWKSURL(issuer string) string {
	if issuer == "" {
		return ""
	}
	return strings.TrimSuffix(issuer, "/") + "/.well-known/jwks.json"
}

// NewJWKSVerifier builds a Verifier fetching keys from s.JWKSURL.
func (s OAuth2Settings) NewJWKSVerifier(opts JWKSOptions, leeway time.Duration) (*Verifier, error) {
	return NewVerifier(Config{
		Keys:           NewJWKSClient(s.JWKSURL, opts),
		Issuer:         s.Issuer,
		Audience:       s.Audience,
		RequiredScopes: s.RequiredScopes,
		Leeway:         leeway,
	})
}
