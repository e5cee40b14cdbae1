package token

import (
	"encoding/json"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Audience is the aud claim. It is written as a plain string when it has a
// single value, as the reference does, and read from a string or an array.
type Audience []string

// MarshalJSON writes one audience as a string, several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var cs jwt.ClaimStrings
	if err := cs.UnmarshalJSON(b); err != nil {
		return err
	}
	*a = Audience(cs)
	return nil
}

// Claims are the registered claims plus OAuth2 scope. Token types with more
// claims embed it.
type Claims struct {
	Issuer    string           `json:"iss,omitempty"`
	Subject   string           `json:"sub,omitempty"`
	Audience  Audience         `json:"aud,omitempty"`
	ExpiresAt *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	ID        string           `json:"jti,omitempty"`
	// Scope is the space-separated OAuth2 scope string.
	Scope string `json:"scope,omitempty"`
	// Scopes is the array form some issuers use; the reference accepts both.
	Scopes []string `json:"scopes,omitempty"`
	// ClientID is set by the dev OAuth2 server (equal to sub).
	ClientID string `json:"client_id,omitempty"`
}

// Carrier is implemented by Claims and every struct embedding it, so the
// Verifier can reach the common claims of any token type.
type Carrier interface {
	jwt.Claims
	Common() *Claims
}

// Common returns the receiver; see Carrier.
func (c *Claims) Common() *Claims { return c }

// GrantedScopes is the union of scope and scopes.
func (c *Claims) GrantedScopes() []string {
	out := strings.Fields(c.Scope)
	return append(out, c.Scopes...)
}

// HasScope reports whether s was granted.
func (c *Claims) HasScope(s string) bool {
	for _, g := range c.GrantedScopes() {
		if g == s {
			return true
		}
	}
	return false
}

func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *Claims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *Claims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *Claims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings(c.Audience), nil }
