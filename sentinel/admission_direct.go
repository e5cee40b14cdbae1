package sentinel

import (
	"context"
	"fmt"
	"strings"

	"github.com/fame-go/fame/admission/token"
)

// directAuth admits peers presenting an OAuth2 access token from the trusted issuer (the
// reference's oauth2 / oauth2-gated authorizers, used with FAME_ADMISSION_PROFILE=direct):
// signature via the issuer's JWKS, iss, exp/nbf, aud = FAME_JWT_AUDIENCE (the sentinel's
// physical path when unset, as the reference falls back) and scope node.connect.
type directAuth struct {
	settings token.OAuth2Settings
	v        *token.Verifier
	// bindSubject makes the token's sub the only system id it may attach as, unless the token
	// carries trustedScope (FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY / FAME_TRUSTED_CLIENT_SCOPE;
	// the reference declares these but never applies them).
	bindSubject  bool
	trustedScope string
}

func newDirectAuth(sentinelPath string, getenv func(string) string) (*directAuth, error) {
	st := token.OAuth2SettingsFromEnv(getenv)
	if st.Issuer == "" {
		return nil, fmt.Errorf("%w: direct admission needs FAME_JWT_TRUSTED_ISSUER (the OAuth2 server's issuer)", ErrAdmissionConfig)
	}
	if st.Audience == "" {
		st.Audience = sentinelPath
	}
	v, err := st.NewJWKSVerifier(token.JWKSOptions{}, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdmissionConfig, err)
	}
	a := &directAuth{settings: st, v: v, trustedScope: getenv("FAME_TRUSTED_CLIENT_SCOPE")}
	if a.trustedScope == "" {
		a.trustedScope = "node.trusted"
	}
	switch strings.ToLower(getenv("FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY")) {
	case "1", "true", "yes", "on":
		a.bindSubject = true
	}
	return a, nil
}

// Authenticate verifies tok as an access token for a peer attaching as systemID.
func (a *directAuth) Authenticate(ctx context.Context, tok, systemID string) (*Principal, error) {
	if tok == "" {
		return nil, ErrNoCredentials
	}
	ctx, cancel := withAuthTimeout(ctx)
	defer cancel()
	c, err := a.v.Verify(ctx, tok)
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	p := &Principal{Subject: c.Subject}
	if a.bindSubject && !c.HasScope(a.trustedScope) {
		if c.Subject != systemID {
			return nil, fmt.Errorf("access token: subject %q may not attach as %q (no %s scope)", c.Subject, systemID, a.trustedScope)
		}
		p.SystemID = c.Subject
	}
	return p, nil
}
