package admit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

// Admission profiles (FAME_ADMISSION_PROFILE, security.md §3.1).
const (
	ProfileNone    = "none"
	ProfileNoop    = "noop"
	ProfileOpen    = "open"
	ProfileDirect  = "direct"
	ProfileWelcome = "welcome"
)

// DefaultScope is the scope the reference nodes request.
const DefaultScope = "node.connect"

// Admission is what a node needs to attach under its admission profile.
type Admission struct {
	Profile    string
	SystemID   string // the id the node must attach with (the welcome ticket is bound to it)
	InstanceID string // sent in NodeHello; use it as NodeAttach.instanceId too

	// URL is the static attach URL (direct/open: FAME_DIRECT_ADMISSION_URL);
	// empty for welcome, where AttachURL asks the welcome grant.
	URL string
	// Token yields the WebSocket bearer (node.Config.Token); nil when the
	// profile sends none (none/open).
	Token func(ctx context.Context) (string, error)

	OAuth2  *OAuth2Source       // direct and welcome
	Welcome *WelcomeTokenSource // welcome only

	HTTPClient *http.Client       // for the admission services (FAME_CA_CERTS added to the roots)
	Trust      *x509bundle.Bundle // FAME_CA_CERTS as a Fame trust bundle; nil when unset
}

// Settings are a node's admission settings, in the reference's terms (package config reads
// them from the FAME_ADMISSION_* variables: config.AdmitSettings, config.Admit). Values are
// taken trimmed of spaces and of one pair of surrounding quotes: the example's env files
// quote some URLs.
type Settings struct {
	Profile      string   // none, noop, open, direct or welcome (FAME_ADMISSION_PROFILE); empty: direct
	URL          string   // the static attach URL, open and direct (FAME_DIRECT_ADMISSION_URL)
	ServiceURL   string   // welcome: the hello URL (FAME_ADMISSION_SERVICE_URL)
	TokenURL     string   // direct, welcome: the OAuth2 token URL (FAME_ADMISSION_TOKEN_URL)
	ClientID     string   // FAME_ADMISSION_CLIENT_ID
	ClientSecret string   // FAME_ADMISSION_CLIENT_SECRET
	Audience     string   // token request audience (FAME_JWT_AUDIENCE); empty: the server's default
	CACerts      string   // PEM file or inline PEM: extra HTTPS roots and the trust bundle (FAME_CA_CERTS)
	NodeID       string   // system id when Options gives none (FAME_NODE_ID)
	Logicals     []string // logicals for NodeHello when Options gives none (FAME_REQUESTED_LOGICALS)
}

// Options complete New; zero values are filled from the Settings.
type Options struct {
	SystemID     string   // empty = Settings.NodeID, else a new random id
	InstanceID   string   // empty = a new random id
	Logicals     []string // empty = Settings.Logicals
	Capabilities []string
	HTTPClient   *http.Client // overrides the CACerts client
	Now          func() time.Time
	// Bearer, when set, is the welcome profile's hello credential instead of an OAuth2
	// client-credentials token from the settings: a token the program already holds (the
	// sentinel's HTTP gateway admits each caller with the caller's own bearer).
	Bearer TokenSource
}

// New builds the admission of a node from its settings (see the package doc).
func New(s Settings, o Options) (*Admission, error) {
	get := func(v string) string { return unquote(strings.TrimSpace(v)) }
	a := &Admission{Profile: strings.ToLower(get(s.Profile)), SystemID: o.SystemID, InstanceID: o.InstanceID}
	if a.Profile == "" {
		a.Profile = ProfileDirect // the reference default when no admission block is given
	}
	if a.SystemID == "" {
		a.SystemID = get(s.NodeID)
	}
	if a.SystemID == "" {
		a.SystemID = envelope.NewID()
	}
	if a.InstanceID == "" {
		a.InstanceID = envelope.NewID()
	}
	logicals := o.Logicals
	if len(logicals) == 0 {
		logicals = s.Logicals
	}
	if err := a.setTrust(get(s.CACerts), o.HTTPClient); err != nil {
		return nil, err
	}
	cc := ClientCredentials{TokenURL: get(s.TokenURL), ClientID: get(s.ClientID), ClientSecret: get(s.ClientSecret),
		Scope: DefaultScope, Audience: get(s.Audience), HTTPClient: a.HTTPClient, Now: o.Now}

	switch a.Profile {
	case ProfileNone, ProfileNoop:
		return a, nil
	case ProfileOpen:
		a.URL = get(s.URL)
		return a, checkWS("FAME_DIRECT_ADMISSION_URL", a.URL)
	case ProfileDirect:
		a.URL = get(s.URL)
		if err := checkWS("FAME_DIRECT_ADMISSION_URL", a.URL); err != nil {
			return nil, err
		}
		src, err := oauth2Source(cc)
		if err != nil {
			return nil, err
		}
		a.OAuth2, a.Token = src, src.Token
		return a, nil
	case ProfileWelcome:
		var src TokenSource = o.Bearer
		if src == nil {
			oa, err := oauth2Source(cc)
			if err != nil {
				return nil, err
			}
			a.OAuth2, src = oa, oa
		}
		ws, err := NewWelcomeTokenSource(&Welcome{
			ServiceURL: get(s.ServiceURL), TokenSource: src,
			SystemID: a.SystemID, InstanceID: a.InstanceID, Logicals: logicals, Capabilities: o.Capabilities,
			HTTPClient: a.HTTPClient, Now: o.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("%w (FAME_ADMISSION_SERVICE_URL)", err)
		}
		a.Welcome, a.Token = ws, ws.Token
		return a, nil
	default:
		return nil, fmt.Errorf("%w: FAME_ADMISSION_PROFILE %q is not one of none, noop, open, direct, welcome", ErrConfig, a.Profile)
	}
}

// AttachURL is the URL to attach to: the static one, or the welcome grant's.
func (a *Admission) AttachURL(ctx context.Context) (string, error) {
	if a.Welcome != nil {
		return a.Welcome.AttachURL(ctx)
	}
	if a.URL == "" {
		return "", fmt.Errorf("%w: profile %q has no attach URL", ErrConfig, a.Profile)
	}
	return a.URL, nil
}

// CertSource returns a renewing certificate source for a welcome admission
// (nil key = a new one), verifying chains against FAME_CA_CERTS when set.
func (a *Admission) CertSource(key ed25519.PrivateKey) (*CertSource, error) {
	if a.Welcome == nil {
		return nil, fmt.Errorf("%w: certificates need welcome admission (profile is %q)", ErrConfig, a.Profile)
	}
	return NewCertSource(CertConfig{Grants: a.Welcome, Key: key, Trust: a.Trust, HTTPClient: a.HTTPClient, Now: a.Welcome.w.Now})
}

func (a *Admission) setTrust(caCerts string, client *http.Client) error {
	var pemBytes []byte
	if caCerts != "" {
		pemBytes = []byte(caCerts)
		if !strings.HasPrefix(caCerts, "-----BEGIN") {
			b, err := os.ReadFile(caCerts)
			if err != nil {
				return fmt.Errorf("%w: FAME_CA_CERTS: %v", ErrConfig, err)
			}
			pemBytes = b
		}
		certs, err := security.ParseCertificates(pemBytes)
		if err != nil {
			return fmt.Errorf("%w: FAME_CA_CERTS: %v", ErrConfig, err)
		}
		a.Trust = security.NewTrustBundle(certs)
	}
	if client != nil {
		a.HTTPClient = client
		return nil
	}
	c, err := NewHTTPClient(pemBytes)
	if err != nil {
		return err
	}
	a.HTTPClient = c
	return nil
}

// oauth2Source is the client-credentials token source of the direct and welcome profiles.
func oauth2Source(cc ClientCredentials) (*OAuth2Source, error) {
	src, err := cc.TokenSource()
	if err != nil {
		return nil, fmt.Errorf("%w (FAME_ADMISSION_TOKEN_URL, FAME_ADMISSION_CLIENT_ID, FAME_ADMISSION_CLIENT_SECRET)", err)
	}
	return src, nil
}

func checkWS(name, u string) error {
	if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
		return fmt.Errorf("%w: %s=%q must be a ws:// or wss:// URL", ErrConfig, name, u)
	}
	return nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}
