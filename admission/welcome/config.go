package welcome

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/internal/envx"
)

// Paths served by the Handler.
const (
	HelloPath = "/fame/v1/welcome/hello"
	// JWKSPath is where the reference serves the welcome JWKS (the sentinel's
	// FAME_JWKS_URL points here); JWKSPathV1 is the same under /fame/v1.
	JWKSPath   = "/fame/welcome/.well-known/jwks.json"
	JWKSPathV1 = "/fame/v1/welcome/.well-known/jwks.json"
)

// Config configures the welcome service.
type Config struct {
	TargetSystemID     string // the sentinel's system id (FAME_NODE_ID of the sentinel)
	TargetPhysicalPath string // default "/" + TargetSystemID
	AttachURL          string // public WS URL, e.g. wss://sentinel/fame/v1/attach/ws/downstream
	CAServiceURL       string // e.g. https://ca/fame/v1/ca; empty = no ca_sign grant
	// Targets, when set, are the sentinels of a cluster: each hello is placed on a ready one
	// (placement.go). A TargetSystemID set as well and among them is this service's home
	// sentinel, preferred while it is ready; without one, TargetSystemID/AttachURL default to
	// the first target and no sentinel is preferred.
	Targets []Target
	// ReadyClient probes the targets' /readyz (nil: a plain client with a 500 ms timeout).
	ReadyClient *http.Client
	Issuer      string // iss of tickets, default https://welcome/fame/welcome
	// Grants tie what a hello may ask for to the bearer token's subject
	// (FAME_WELCOME_GRANTS / FAME_WELCOME_GRANTS_FILE). Required whenever
	// hellos are authenticated: a hello naming a system id or a logical
	// outside its client's grant is refused (403).
	Grants []ClientGrant
	// AllowedLogicals applies only to anonymous hellos (AllowAnonymous, no
	// subject to look a grant up by): requested logicals are intersected
	// with it, the rest returned as rejectedLogicals, as the reference does.
	// Default ["*.fame.fabric"]; "*" is refused. With authentication it
	// must be empty: the grants say it per client.
	AllowedLogicals []string
	TicketTTL       time.Duration // attach ticket and CA grant, default 5 min
	WelcomeTTL      time.Duration // NodeWelcome.expiresAt, default 1 h
	KeyFile         string        // signing key file; empty = ephemeral

	// Auth configures the bearer check from the environment; ignored when
	// Verifier is set. AllowAnonymous disables the check (development only).
	Auth           token.OAuth2Settings
	Verifier       *token.Verifier
	AllowAnonymous bool

	Key    *jose.SigningKey // overrides KeyFile (tests, shared keys)
	Now    func() time.Time
	Logger *slog.Logger

	home string // the preferred target's id (setDefaults), "" for none

	Host string // FAME_APP_HOST, for the CLI
	Port string // FAME_APP_PORT, default 8090
}

// ConfigFromEnv reads the service's variables (see the package doc).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		TargetSystemID:     getenv("FAME_WELCOME_TARGET_SYSTEM_ID"),
		TargetPhysicalPath: getenv("FAME_WELCOME_TARGET_PHYSICAL_PATH"),
		AttachURL:          envx.First(getenv, "", "FAME_WELCOME_ATTACH_URL", "FAME_DIRECT_ADMISSION_URL"),
		CAServiceURL:       getenv("FAME_CA_SERVICE_URL"),
		Issuer:             getenv("FAME_WELCOME_ISSUER"),
		AllowedLogicals:    envx.List(getenv, "FAME_WELCOME_ALLOWED_LOGICALS", nil),
		// Grants: below, with the durations.
		KeyFile:        getenv("FAME_WELCOME_KEY_FILE"),
		Auth:           token.OAuth2SettingsFromEnv(getenv),
		AllowAnonymous: envx.Bool(getenv, "FAME_WELCOME_ALLOW_ANONYMOUS"),
		Host:           envx.First(getenv, "0.0.0.0", "FAME_APP_HOST"),
		Port:           envx.First(getenv, "8090", "FAME_APP_PORT"),
	}
	var err error
	if v := getenv("FAME_WELCOME_TARGETS"); v != "" {
		if c.Targets, err = parseTargets(v); err != nil {
			return c, err
		}
	}
	if c.Grants, err = grantsFromEnv(getenv); err != nil {
		return c, err
	}
	if c.TicketTTL, err = envx.Duration(getenv, "FAME_WELCOME_TICKET_TTL", 0); err != nil {
		return c, err
	}
	if c.WelcomeTTL, err = envx.Duration(getenv, "FAME_WELCOME_TTL", 0); err != nil {
		return c, err
	}
	return c, nil
}

var (
	errNoTarget          = errors.New("welcome: target system id is required")
	errNoAttach          = errors.New("welcome: attach URL is required")
	errNoAuth            = errors.New("welcome: no bearer verification configured (set FAME_JWT_TRUSTED_ISSUER or allow anonymous)")
	errNoGrants          = errors.New("welcome: no client grants configured (FAME_WELCOME_GRANTS): without them any client could claim any system id and logical")
	errAnonymousGrants   = errors.New("welcome: client grants need authenticated hellos (they are looked up by the token subject); drop FAME_WELCOME_ALLOW_ANONYMOUS")
	errAllowedWithGrants = errors.New("welcome: FAME_WELCOME_ALLOWED_LOGICALS applies only to anonymous hellos; put the logicals in the client grants")
)

func (c *Config) setDefaults() error {
	if len(c.Targets) > 0 {
		for i := range c.Targets {
			if c.Targets[i].PhysicalPath == "" {
				c.Targets[i].PhysicalPath = "/" + c.Targets[i].SystemID
			}
		}
		home := c.Targets[0]
		if c.TargetSystemID == "" {
			c.TargetSystemID, c.TargetPhysicalPath = home.SystemID, home.PhysicalPath
		} else if i := slices.IndexFunc(c.Targets, func(t Target) bool { return t.SystemID == c.TargetSystemID }); i >= 0 {
			home, c.home = c.Targets[i], c.TargetSystemID
		}
		if c.AttachURL == "" {
			c.AttachURL = home.AttachURL
		}
	}
	if c.TargetSystemID == "" {
		return errNoTarget
	}
	if !validSystemID(c.TargetSystemID) {
		return fmt.Errorf("welcome: invalid target system id %q", c.TargetSystemID)
	}
	if c.TargetPhysicalPath == "" {
		c.TargetPhysicalPath = "/" + c.TargetSystemID
	}
	if c.AttachURL == "" {
		return errNoAttach
	}
	if c.Issuer == "" {
		c.Issuer = "https://welcome/fame/welcome"
	}
	if c.AllowedLogicals == nil && len(c.Grants) == 0 {
		c.AllowedLogicals = []string{"*.fame.fabric"}
	}
	for _, l := range c.AllowedLogicals {
		if l == "*" {
			return fmt.Errorf("FAME_WELCOME_ALLOWED_LOGICALS: %w", ErrGrantWildcard)
		}
		if !validLogical(l) {
			return fmt.Errorf("welcome: FAME_WELCOME_ALLOWED_LOGICALS: invalid logical %q", l)
		}
	}
	if c.TicketTTL <= 0 {
		c.TicketTTL = 5 * time.Minute
	}
	if c.WelcomeTTL <= 0 {
		c.WelcomeTTL = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
