package admit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenSource yields a bearer token; Token fits node.Config.Token.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// invalidator is implemented by sources whose cached value can be dropped
// when a service refuses it.
type invalidator interface{ Invalidate() }

// ClientCredentials configures an OAuth2 client-credentials token source
// (security.md §3.1, FAME_ADMISSION_TOKEN_URL / _CLIENT_ID / _CLIENT_SECRET).
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scope        string // space separated; the reference asks for "node.connect"
	Audience     string // FAME_JWT_AUDIENCE; empty = the server's default

	HTTPClient *http.Client     // nil = http.DefaultClient
	Timeout    time.Duration    // one token request; default DefaultTimeout
	Now        func() time.Time // clock (tests); default time.Now
}

// DefaultTokenTTL is assumed when the server gives neither expires_in nor a
// JWT exp (the reference provider's default).
const DefaultTokenTTL = time.Hour

// OAuth2Source fetches an access token and caches it until 2/3 of its
// lifetime has passed. Unlike the reference provider, which never renews,
// a node can run for days. Safe for concurrent use.
type OAuth2Source struct {
	cfg ClientCredentials
	r   *renewer[string]
}

// TokenSource validates c and returns its caching source.
func (c ClientCredentials) TokenSource() (*OAuth2Source, error) {
	u, err := url.Parse(c.TokenURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: token URL %q is not an http(s) URL", ErrConfig, c.TokenURL)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return nil, fmt.Errorf("%w: OAuth2 client id and secret are required", ErrConfig)
	}
	s := &OAuth2Source{cfg: c}
	s.r = newRenewer("OAuth2 access token", c.Now, c.Timeout, s.fetch)
	return s, nil
}

// Token returns a valid access token, fetching or renewing it when due.
func (s *OAuth2Source) Token(ctx context.Context) (string, error) { return s.r.get(ctx) }

// Invalidate drops the cached token (a service refused it).
func (s *OAuth2Source) Invalidate() { s.r.invalidate() }

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

func (s *OAuth2Source) fetch(ctx context.Context, start time.Time) (string, time.Time, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if s.cfg.Scope != "" {
		form.Set("scope", s.cfg.Scope)
	}
	if s.cfg.Audience != "" {
		form.Set("audience", s.cfg.Audience)
	}
	// The credentials go both in the form (what the reference provider
	// sends) and as HTTP Basic (what RFC 6749 prefers), so either kind of
	// server accepts them. Basic is left out for an id containing ':', which
	// it cannot carry unescaped, and servers differ on unescaping.
	form.Set("client_id", s.cfg.ClientID)
	form.Set("client_secret", s.cfg.ClientSecret)
	req := request{
		op: "token", url: s.cfg.TokenURL, contentType: "application/x-www-form-urlencoded",
		body: []byte(form.Encode()),
	}
	if !strings.Contains(s.cfg.ClientID, ":") {
		req.basicUser, req.basicPass = s.cfg.ClientID, s.cfg.ClientSecret
	}
	body, err := post(ctx, s.cfg.HTTPClient, s.cfg.Timeout, req)
	if err != nil {
		return "", time.Time{}, err
	}
	return parseTokenResponse(body, start)
}

// parseTokenResponse extracts the token and its local expiry: expires_in
// first, then the JWT's own exp, then DefaultTokenTTL.
func parseTokenResponse(body []byte, start time.Time) (string, time.Time, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", time.Time{}, fmt.Errorf("%w: token response is not JSON: %v", ErrBadResponse, err)
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("%w: token response has no access_token", ErrBadResponse)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", time.Time{}, fmt.Errorf("%w: token_type %q is not Bearer", ErrBadResponse, tr.TokenType)
	}
	if err := checkTokenChars("access_token", tr.AccessToken); err != nil {
		return "", time.Time{}, err
	}
	if n, ok := expiresIn(tr.ExpiresIn); ok {
		return tr.AccessToken, start.Add(n), nil
	}
	if exp, ok := localExpiry(tr.AccessToken, start); ok {
		return tr.AccessToken, exp, nil
	}
	return tr.AccessToken, start.Add(DefaultTokenTTL), nil
}

// expiresIn accepts a number (integer or float) or a numeric string, as
// seen in the wild; non-positive values are ignored.
func expiresIn(raw json.RawMessage) (time.Duration, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		if _, err := fmt.Sscanf(s, "%g", &f); err != nil {
			return 0, false
		}
	}
	if f <= 0 || f > 1e9 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}
