package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Admission failures the sentinel branches on or tests match with errors.Is. Token refusals
// from the verifiers (expired, wrong audience, ...) are *token.Error values wrapped below these.
var (
	// ErrNoCredentials: the upgrade carried no bearer token.
	ErrNoCredentials = errors.New("admission: no bearer token presented")
	// ErrAdmissionConfig: the profile needs settings that are missing or wrong.
	ErrAdmissionConfig = errors.New("admission: configuration")
)

// authTimeout bounds one Authenticate call, JWKS fetch included: a slow issuer must not hold
// upgrades open for the life of the HTTP request.
const authTimeout = 5 * time.Second

// newAuthenticator builds the admission check for the configured admission profile: nil for
// none/open/noop (everyone may attach), an OAuth2 access-token check for direct, an
// attach-ticket check for welcome.
//
// The settings are Options.Admission (package config reads them from the reference's
// variables: FAME_JWT_TRUSTED_ISSUER, FAME_JWKS_URL, FAME_JWT_AUDIENCE, ...). The direct
// profile also takes Admission.Grants and GrantsFile (FAME_ADMISSION_GRANTS and
// FAME_ADMISSION_GRANTS_FILE): per-client grants in the welcome service's syntax
// (welcome.ParseGrants), e.g.
//
//	sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric; sub=math-client system_ids=*
//
// With grants, the token's subject (sub, else client_id) must have one, the attaching system id
// must match its system_ids, and the node's declared logicals and every bind must lie within its
// logicals (NO_ADMISSION_GRANT, SYSTEM_ID_NOT_GRANTED, LOGICAL_NOT_GRANTED at attach, UNAUTHORIZED
// at bind).
func newAuthenticator(s *Sentinel) (Authenticator, error) {
	return authenticatorFor(s, s.opts.Admission)
}

func authenticatorFor(s *Sentinel, ao AdmissionOptions) (Authenticator, error) {
	switch p := AdmissionProfile(strings.ToLower(strings.TrimSpace(string(s.opts.AdmissionProfile)))); p {
	case "", AdmissionNone, AdmissionOpen, AdmissionNoop:
		// An untyped nil: the sentinel tests s.auth != nil, which a typed nil pointer would pass.
		return nil, nil
	case AdmissionDirect:
		a, err := newDirectAuth(s.path, ao)
		if err != nil {
			return nil, err
		}
		s.log.Info("admission: OAuth2 access tokens", "issuer", a.settings.Issuer,
			"jwks", a.settings.JWKSURL, "audience", a.settings.Audience, "scopes", a.settings.RequiredScopes)
		if g := a.grants.Load(); g != nil {
			s.log.Info("admission: per-client grants bind token subjects to system ids and logicals", "grants", g.Len())
		} else {
			// An access token names a client, not a node: without grants the holder of any
			// valid client credential may take any system id (FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY
			// narrows that to the subject, except for trusted-scope tokens) and bind any
			// logical it declares.
			s.log.Warn("admission: direct profile without "+envAdmissionGrants+
				": any valid token may attach with any system id and bind any logical it declares",
				"subject_binding", a.bindSubject)
		}
		return a, nil
	case AdmissionWelcome:
		a, err := newWelcomeAuth(s.path, ao)
		if err != nil {
			return nil, err
		}
		if s.opts.ID == "" {
			// Tickets name the sentinel's path as audience; a random id can never match the
			// welcome service's placement.
			s.log.Warn("admission: welcome profile without a fixed sentinel id; set FAME_NODE_ID to the welcome service's target system id",
				"path", s.path)
		}
		s.log.Info("admission: attach tickets", "issuer", a.issuer, "jwks", a.jwksURL, "audience", s.path)
		return a, nil
	default:
		return nil, fmt.Errorf("%w: unknown admission profile %q", ErrAdmissionConfig, p)
	}
}

// withAuthTimeout derives the context one Authenticate call runs under.
func withAuthTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, authTimeout)
}
