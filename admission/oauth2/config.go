package oauth2

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/internal/envx"
)

// Client is one registered client.
type Client struct {
	ID     string
	Secret string
}

// Config configures the server.
type Config struct {
	Issuer        string // iss, and the base of the discovery URLs
	Audience      string // default aud when the request names none
	Clients       []Client
	AllowedScopes []string
	TokenTTL      time.Duration
	KeyFile       string
	Key           *jose.SigningKey // overrides KeyFile
	Now           func() time.Time

	Host string // APP_HOST, for the CLI
	Port string // APP_PORT, default 8099
}

// ConfigFromEnv reads the reference's variables plus the FAME_OAUTH2_* ones.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Issuer:        getenv("FAME_JWT_ISSUER"),
		Audience:      envx.First(getenv, "fame-fabric", "FAME_JWT_AUDIENCE"),
		AllowedScopes: envx.List(getenv, "FAME_JWT_ALLOWED_SCOPES", []string{"node.connect"}),
		KeyFile:       getenv("FAME_OAUTH2_KEY_FILE"),
		Host:          envx.First(getenv, "0.0.0.0", "APP_HOST"),
		Port:          envx.First(getenv, "8099", "APP_PORT"),
	}
	for _, pair := range [][2]string{
		{"FAME_JWT_CLIENT_ID", "FAME_JWT_CLIENT_SECRET"},
		{"FAME_OAUTH2_CLIENT_ID", "FAME_OAUTH2_CLIENT_SECRET"},
	} {
		if id := getenv(pair[0]); id != "" {
			c.Clients = append(c.Clients, Client{ID: id, Secret: getenv(pair[1])})
		}
	}
	for _, item := range envx.List(getenv, "FAME_OAUTH2_CLIENTS", nil) {
		id, secret, ok := strings.Cut(item, ":")
		if !ok || id == "" {
			return c, fmt.Errorf("FAME_OAUTH2_CLIENTS: entry %q is not id:secret", item)
		}
		c.Clients = append(c.Clients, Client{ID: id, Secret: secret})
	}
	var err error
	c.TokenTTL, err = envx.Duration(getenv, "FAME_OAUTH2_TOKEN_TTL", time.Hour)
	return c, err
}

var (
	errNoIssuer  = errors.New("oauth2: issuer is required (FAME_JWT_ISSUER)")
	errNoClients = errors.New("oauth2: at least one client id/secret is required")
)

func (c *Config) setDefaults() error {
	if c.Issuer == "" {
		return errNoIssuer
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	if len(c.Clients) == 0 {
		return errNoClients
	}
	for _, cl := range c.Clients {
		if cl.ID == "" || cl.Secret == "" {
			return fmt.Errorf("oauth2: client %q has an empty id or secret", cl.ID)
		}
	}
	if c.Audience == "" {
		c.Audience = "fame-fabric"
	}
	if len(c.AllowedScopes) == 0 {
		c.AllowedScopes = []string{"node.connect"}
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
