package sentinel

import (
	"context"
	"fmt"

	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
)

// welcomeAuth admits peers presenting an attach ticket from the welcome service
// (FAME_ADMISSION_PROFILE=welcome): signature via the welcome JWKS (FAME_JWKS_URL), iss =
// FAME_JWT_TRUSTED_ISSUER, aud = this sentinel's physical path, system_id = the URL's system id.
// The ticket's accepted_logicals become Principal.Logicals, so AddressBind refuses anything
// the welcome service did not grant.
type welcomeAuth struct {
	issuer, jwksURL string
	sentinelPath    string
	v               *ticket.TicketVerifier
}

func newWelcomeAuth(sentinelPath string, ao AdmissionOptions) (*welcomeAuth, error) {
	issuer := ao.Issuer
	if issuer == "" {
		return nil, fmt.Errorf("%w: welcome admission needs FAME_JWT_TRUSTED_ISSUER (the welcome service's ticket issuer)", ErrAdmissionConfig)
	}
	jwks := ao.JWKSURL
	if jwks == "" {
		jwks = token.DefaultJWKSURL(issuer)
	}
	v, err := ticket.NewTicketVerifier(ticket.VerifierConfig{
		Keys:    token.NewJWKSClient(jwks, token.JWKSOptions{}),
		Issuer:  issuer,
		Timeout: authTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdmissionConfig, err)
	}
	return &welcomeAuth{issuer: issuer, jwksURL: jwks, sentinelPath: sentinelPath, v: v}, nil
}

// Authenticate verifies tok as an attach ticket for systemID under this sentinel. The
// NodeAttach instance id is not known at upgrade time; the ticket's instance_id travels in
// the Principal and is compared when NodeAttach arrives.
func (a *welcomeAuth) Authenticate(ctx context.Context, tok, systemID string) (*Principal, error) {
	if tok == "" {
		return nil, ErrNoCredentials
	}
	ctx, cancel := withAuthTimeout(ctx)
	defer cancel()
	t, err := a.v.VerifyContext(ctx, tok, ticket.AttachInfo{SystemID: systemID, SentinelPath: a.sentinelPath})
	if err != nil {
		return nil, fmt.Errorf("attach ticket: %w", err)
	}
	logicals := t.AcceptedLogicals
	if logicals == nil {
		// A ticket that names no logicals grants none; nil would mean "unrestricted".
		logicals = []string{}
	}
	return &Principal{Subject: t.Subject, SystemID: t.SystemID, InstanceID: t.InstanceID, Logicals: logicals}, nil
}
