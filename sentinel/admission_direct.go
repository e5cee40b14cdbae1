package sentinel

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
)

// directAuth admits peers presenting an OAuth2 access token from the trusted issuer (the
// reference's oauth2 / oauth2-gated authorizers, used with FAME_ADMISSION_PROFILE=direct):
// signature via the issuer's JWKS, iss, exp/nbf, aud = FAME_JWT_AUDIENCE (the sentinel's
// physical path when unset, as the reference falls back) and scope node.connect.
//
// An access token names a client, not a node: it carries no system id and no logicals. Per-client
// grants (FAME_ADMISSION_GRANTS / FAME_ADMISSION_GRANTS_FILE, the welcome service's syntax and
// matching rules, welcome.ParseGrants) supply what the token cannot: which system ids and which
// logicals the token's subject may attach as and bind. Without grants any valid token may attach
// with any system id and bind whatever the node declares (a warning at start says so).
type directAuth struct {
	settings token.OAuth2Settings
	v        *token.Verifier
	// bindSubject makes the token's sub the only system id it may attach as, unless the token
	// carries trustedScope (FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY / FAME_TRUSTED_CLIENT_SCOPE;
	// the reference declares these but never applies them).
	bindSubject  bool
	trustedScope string
	// grants, when set, bind the token's subject to system ids and logicals (checkAttachGrant,
	// mayBind through Principal.Logicals). A hot reload swaps it (reload.go); a connection
	// keeps the set it was admitted under.
	grants atomic.Pointer[welcome.GrantSet]
}

// envAdmissionGrants names the grants' variable in messages, so an operator knows what to fix.
const envAdmissionGrants = config.GrantsVar

// defaultTrustedClientScope is the reference's scope for clients trusted with any system id.
const defaultTrustedClientScope = "node.trusted"

// loadGrants parses the inline grants and those of file (one per line); both may be given.
// Errors name the variables they came from.
func loadGrants(inline, file string) ([]welcome.ClientGrant, error) {
	return welcome.ReadGrants(envAdmissionGrants, inline, file)
}

func newDirectAuth(sentinelPath string, ao AdmissionOptions) (*directAuth, error) {
	st := token.OAuth2Settings{Issuer: ao.Issuer, JWKSURL: ao.JWKSURL, Audience: ao.Audience,
		RequiredScopes: []string{token.ScopeNodeConnect}}
	if st.JWKSURL == "" {
		st.JWKSURL = token.DefaultJWKSURL(st.Issuer)
	}
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
	a := &directAuth{settings: st, v: v, trustedScope: ao.TrustedClientScope, bindSubject: ao.BindSubject}
	if a.trustedScope == "" {
		a.trustedScope = defaultTrustedClientScope
	}
	set, err := grantSet(sentinelPath, ao)
	if err != nil {
		return nil, err
	}
	a.grants.Store(set)
	return a, nil
}

// grantSet reads the grants of ao (inline and file); nil when there are none.
func grantSet(sentinelPath string, ao AdmissionOptions) (*welcome.GrantSet, error) {
	gs, err := loadGrants(ao.Grants, ao.GrantsFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdmissionConfig, err)
	}
	if len(gs) == 0 {
		return nil, nil
	}
	// The sentinel's own id is the target: a grant reaches it only by naming it exactly, and
	// the sentinel refuses a self attach anyway.
	set, err := welcome.NewGrantSet(gs, strings.TrimPrefix(sentinelPath, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrAdmissionConfig, envAdmissionGrants, err)
	}
	return set, nil
}

// Authenticate verifies tok as an access token for a peer attaching as systemID. The grant of
// the token's subject travels in the Principal and is checked when NodeAttach arrives, so that a
// refusal can name its reason in a negative NodeAttachAck rather than a bare upgrade failure.
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
	if grants := a.grants.Load(); grants != nil {
		sub := c.Subject
		if sub == "" {
			sub = c.ClientID
		}
		p.Subject = sub
		g, ok := grants.Lookup(sub)
		p.grant = &directGrant{set: grants, ok: ok}
		// A grant without logicals grants none (a plain client); nil would mean "unrestricted".
		// A subject without a grant is refused at NodeAttach; until then it binds nothing.
		p.Logicals = []string{}
		if ok && len(g.Logicals) > 0 {
			p.Logicals = g.Logicals
		}
		p.grant.systemIDs = g.SystemIDs
	}
	return p, nil
}

// directGrant is what a direct-profile token was admitted under when grants are configured.
type directGrant struct {
	set       *welcome.GrantSet
	ok        bool     // the subject has a grant
	systemIDs []string // its system id patterns, for messages
}

// Wire codes and refusal labels of attaches outside the token subject's grant.
const (
	codeNoAdmissionGrant   = "NO_ADMISSION_GRANT"
	codeSystemIDNotGranted = "SYSTEM_ID_NOT_GRANTED"
	codeLogicalNotGranted  = "LOGICAL_NOT_GRANTED"

	refusalNoGrant            = "no_grant"
	refusalSystemIDNotGranted = "system_id_not_granted"
	refusalLogicalNotGranted  = "logical_not_granted"
)

// checkAttachGrant refuses a NodeAttach outside the grant of the token's subject: a subject
// without a grant, a system id its grant does not name, or a declared logical its grant does
// not cover. All or nothing, as in the welcome service: a node that silently lost a logical
// would attach and then fail its binds. The declared logical "*" is the exception: it is what
// SDK clients that request nothing send (node.Config: empty means ["*"]), it claims nothing of
// its own, and it grants nothing either, since later binds are held to the grant by mayBind
// through Principal.Logicals whatever the node declared.
func (s *Sentinel) checkAttachGrant(c *conn, na *envelope.NodeAttach) error {
	p := c.principal
	if p == nil || p.grant == nil {
		return nil
	}
	refuse := func(code, label, reason string) error {
		s.securityRefusal(c, label, reason, "subject", p.Subject)
		return &attachRefusal{code: code, reason: reason}
	}
	if !p.grant.ok {
		return refuse(codeNoAdmissionGrant, refusalNoGrant,
			fmt.Sprintf("client %q has no admission grant", p.Subject))
	}
	if !p.grant.set.AllowsID(p.Subject, na.SystemID) {
		return refuse(codeSystemIDNotGranted, refusalSystemIDNotGranted,
			fmt.Sprintf("client %q may not attach as system id %q (granted: %s)", p.Subject, na.SystemID, strings.Join(p.grant.systemIDs, ",")))
	}
	for _, l := range na.AcceptedLogicals {
		if l != "*" && !envelope.LogicalAllowed(p.Logicals, l) {
			return refuse(codeLogicalNotGranted, refusalLogicalNotGranted,
				fmt.Sprintf("client %q may not declare logical %q (granted: %q)", p.Subject, l, p.Logicals))
		}
	}
	return nil
}
