package main

import (
	"context"
	"flag"
	"net"

	"github.com/fame-go/fame/admission/oauth2"
)

func init() { register("oauth2", runOAuth2) }

// runOAuth2 serves the dev OAuth2 server (client credentials → EdDSA access tokens, JWKS).
// Configuration: FAME_JWT_ISSUER, FAME_JWT_CLIENT_ID/SECRET (or FAME_OAUTH2_CLIENTS),
// FAME_JWT_AUDIENCE, ...; see admission/oauth2. Default address APP_HOST:APP_PORT (:8099).
func runOAuth2(ctx context.Context, args []string) error {
	cfg, err := oauth2.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("oauth2", flag.ContinueOnError)
	var sf serveFlags
	sf.register(fs, net.JoinHostPort(cfg.Host, cfg.Port))
	issuer := fs.String("issuer", cfg.Issuer, "token issuer (iss) and base of the discovery URLs")
	keyFile := fs.String("key-file", cfg.KeyFile, "persist the signing key here (empty: new key per process)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Issuer, cfg.KeyFile = *issuer, *keyFile
	log := sf.logger("oauth2")
	srv, err := oauth2.New(cfg)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		ids = append(ids, c.ID)
	}
	log.Info("oauth2 configured", "issuer", cfg.Issuer, "audience", cfg.Audience, "clients", ids,
		"scopes", cfg.AllowedScopes, "token_ttl", cfg.TokenTTL, "kid", srv.Key().Kid)
	return serveHTTP(ctx, "oauth2", srv, &sf, log)
}
