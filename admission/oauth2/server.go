package oauth2

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fame-go/fame/admission/internal/httpx"
	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
	"github.com/golang-jwt/jwt/v5"
)

// Paths served by the Server.
const (
	TokenPath     = "/oauth/token"
	JWKSPath      = "/.well-known/jwks.json"
	DiscoveryPath = "/.well-known/openid-configuration"
)

// Server is the dev OAuth2 server; it is an http.Handler.
type Server struct {
	cfg       Config
	key       *jose.SigningKey
	jwks      []byte
	discovery []byte
	mux       *http.ServeMux
}

// New builds the server.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	key, err := jose.KeyOrFile(cfg.Key, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("oauth2: signing key: %w", err)
	}
	jwks, err := json.Marshal(jose.SetOf(key))
	if err != nil {
		return nil, fmt.Errorf("oauth2: encode JWKS: %w", err)
	}
	disc, err := json.Marshal(map[string]any{
		"issuer":                                cfg.Issuer,
		"token_endpoint":                        cfg.Issuer + TokenPath,
		"jwks_uri":                              cfg.Issuer + JWKSPath,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported": []string{"EdDSA"},
		"scopes_supported":                      cfg.AllowedScopes,
		"response_types_supported":              []string{"token"},
	})
	if err != nil {
		return nil, fmt.Errorf("oauth2: encode discovery: %w", err)
	}
	s := &Server{cfg: cfg, key: key, jwks: jwks, discovery: disc, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST "+TokenPath, s.token)
	s.mux.HandleFunc("GET "+JWKSPath, s.static(s.jwks))
	s.mux.HandleFunc("GET "+DiscoveryPath, s.static(s.discovery))
	return s, nil
}

// Key is the token signing key.
func (s *Server) Key() *jose.SigningKey { return s.key }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) static(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	}
}

// tokenError writes an RFC 6749 §5.2 error (plus "detail" like the other
// admission services).
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="fame"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, map[string]string{"error": code, "error_description": desc, "detail": desc, "code": code})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "cannot parse form body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported", gt))
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "no client credentials")
		return
	}
	if !s.authenticate(id, secret) {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	scopes, ok := s.grantScopes(strings.Fields(r.PostForm.Get("scope")))
	if !ok {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "none of the requested scopes is allowed")
		return
	}
	aud := r.PostForm.Get("audience")
	if aud == "" {
		aud = s.cfg.Audience
	}
	now := s.cfg.Now()
	claims := &token.Claims{
		Issuer: s.cfg.Issuer, Subject: id, ClientID: id, Audience: token.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.TokenTTL)),
		ID:        envelope.NewID(), Scope: strings.Join(scopes, " "),
	}
	tok, err := s.key.Sign(claims)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "cannot sign token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer",
		"expires_in": int(s.cfg.TokenTTL.Seconds()), "scope": claims.Scope,
	})
}

// authenticate compares against every client so the time taken does not
// reveal which ids exist.
func (s *Server) authenticate(id, secret string) bool {
	ok := 0
	for _, c := range s.cfg.Clients {
		idEq := subtle.ConstantTimeCompare([]byte(c.ID), []byte(id))
		secEq := subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret))
		ok |= idEq & secEq
	}
	return ok == 1
}

func (s *Server) grantScopes(requested []string) ([]string, bool) {
	if len(requested) == 0 {
		return s.cfg.AllowedScopes, true
	}
	var out []string
	for _, sc := range requested {
		if slices.Contains(s.cfg.AllowedScopes, sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, len(out) > 0
}
