package ca

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/internal/envx"

	"github.com/fame-go/fame/security"
)

// Config configures the CA service.
type Config struct {
	Dir string // InitCA directory (FAME_CA_DIR); takes precedence over the PEM settings

	// Reference-style material: each value is a file path or inline PEM.
	RootCert, RootKey, IntermediateChain, SigningCert, SigningKey string

	GrantIssuer          string // iss of CA grants (welcome)
	GrantJWKSURL         string // welcome JWKS
	AllowUnauthenticated bool
	NodeTTL              time.Duration
	TrustDomain          string

	Host, Port string // FAME_APP_HOST / FAME_APP_PORT (8091)
}

// ConfigFromEnv reads the variables listed in the package doc.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Dir:                  getenv("FAME_CA_DIR"),
		RootCert:             envx.First(getenv, "", "FAME_CA_CERT_FILE", "FAME_CA_CERT_PEM"),
		RootKey:              envx.First(getenv, "", "FAME_CA_KEY_FILE", "FAME_CA_KEY_PEM"),
		IntermediateChain:    envx.First(getenv, "", "FAME_INTERMEDIATE_CHAIN_FILE", "FAME_INTERMEDIATE_CHAIN_PEM"),
		SigningCert:          envx.First(getenv, "", "FAME_SIGNING_CERT_FILE", "FAME_SIGNING_CERT_PEM"),
		SigningKey:           envx.First(getenv, "", "FAME_SIGNING_KEY_FILE", "FAME_SIGNING_KEY_PEM"),
		GrantIssuer:          envx.First(getenv, "https://welcome/fame/welcome", "FAME_CA_TRUSTED_ISSUER"),
		GrantJWKSURL:         getenv("FAME_CA_JWKS_URL"),
		AllowUnauthenticated: envx.Bool(getenv, "FAME_CA_ALLOW_UNAUTHENTICATED"),
		TrustDomain:          envx.First(getenv, security.TrustDomain, "FAME_CA_TRUST_DOMAIN"),
		Host:                 envx.First(getenv, "0.0.0.0", "FAME_APP_HOST"),
		Port:                 envx.First(getenv, "8091", "FAME_APP_PORT"),
	}
	if c.GrantJWKSURL == "" {
		c.GrantJWKSURL = token.DefaultJWKSURL(c.GrantIssuer)
	}
	var err error
	c.NodeTTL, err = envx.Duration(getenv, "FAME_CA_CERT_TTL", 24*time.Hour)
	return c, err
}

// Authority loads (or, with no material configured, creates an ephemeral)
// CA as the configuration says.
func (c Config) Authority(log *slog.Logger) (*Authority, error) {
	a, err := c.loadAuthority(log)
	if err != nil {
		return nil, err
	}
	if c.TrustDomain != "" {
		a.TrustDomain = c.TrustDomain
	}
	if c.NodeTTL > 0 {
		a.NodeTTL = c.NodeTTL
	}
	return a, nil
}

func (c Config) loadAuthority(log *slog.Logger) (*Authority, error) {
	if c.Dir != "" {
		return InitCA(c.Dir)
	}
	if c.RootCert == "" || c.RootKey == "" {
		if log != nil {
			log.Warn("ca: no CA material configured, using an ephemeral CA (nodes cannot trust it across restarts)")
		}
		return Ephemeral()
	}
	roots, err := certsFrom(c.RootCert)
	if err != nil {
		return nil, fmt.Errorf("ca: root certificate: %w", err)
	}
	rootKey, err := keyFrom(c.RootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: root key: %w", err)
	}
	var chain []*x509.Certificate
	if c.IntermediateChain != "" {
		if chain, err = certsFrom(c.IntermediateChain); err != nil {
			return nil, fmt.Errorf("ca: intermediate chain: %w", err)
		}
	}
	// Signer selection as in the reference: explicit signing cert+key, then
	// the chain's first certificate with the signing key, then the root.
	signer, signerKey := roots[0], rootKey
	if c.SigningKey != "" {
		k, err := keyFrom(c.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("ca: signing key: %w", err)
		}
		switch {
		case c.SigningCert != "":
			certs, err := certsFrom(c.SigningCert)
			if err != nil {
				return nil, fmt.Errorf("ca: signing certificate: %w", err)
			}
			signer, signerKey = certs[0], k
		case len(chain) > 0:
			signer, signerKey = chain[0], k
		}
	}
	if len(chain) == 0 && !signer.Equal(roots[0]) {
		chain = []*x509.Certificate{signer}
	}
	return NewAuthority(roots[0], signer, signerKey, chain)
}

// GrantVerifier builds the CA-grant verifier, or nil in unauthenticated mode.
func (c Config) GrantVerifier() (*token.Verifier, error) {
	if c.AllowUnauthenticated {
		return nil, nil
	}
	return token.NewVerifier(token.Config{
		Keys:     token.NewJWKSClient(c.GrantJWKSURL, token.JWKSOptions{}),
		Issuer:   c.GrantIssuer,
		Audience: ticket.AudienceCA,
	})
}

// New builds the whole service from the configuration.
func New(c Config, log *slog.Logger) (*Server, *Authority, error) {
	a, err := c.Authority(log)
	if err != nil {
		return nil, nil, err
	}
	v, err := c.GrantVerifier()
	if err != nil {
		return nil, nil, err
	}
	s, err := NewServer(a, v, c.AllowUnauthenticated, log)
	return s, a, err
}

func pemOrFile(v string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "-----BEGIN") {
		return []byte(v), nil
	}
	return os.ReadFile(v)
}

func certsFrom(v string) ([]*x509.Certificate, error) {
	b, err := pemOrFile(v)
	if err != nil {
		return nil, err
	}
	return ParseCertsPEM(b)
}

func keyFrom(v string) (crypto.Signer, error) {
	b, err := pemOrFile(v)
	if err != nil {
		return nil, err
	}
	return ParseKeyPEM(b)
}
