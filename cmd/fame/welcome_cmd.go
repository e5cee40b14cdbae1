package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/welcome"
)

func init() { register("welcome", runWelcome) }

// runWelcome serves the welcome service (NodeHello → NodeWelcome with the attach ticket and CA
// grant). Configuration: FAME_WELCOME_TARGET_SYSTEM_ID (= the sentinel's FAME_NODE_ID),
// FAME_WELCOME_ATTACH_URL, FAME_CA_SERVICE_URL, FAME_JWT_TRUSTED_ISSUER (the OAuth2 server),
// FAME_WELCOME_GRANTS / FAME_WELCOME_GRANTS_FILE or -grants-file (which OAuth2 client may
// attach as which system ids with which logicals; required unless hellos are anonymous),
// ...; see admission/welcome. Default address FAME_APP_HOST:FAME_APP_PORT (:8090).
func runWelcome(ctx context.Context, args []string) error {
	cfg, err := welcome.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("welcome", flag.ContinueOnError)
	var sf serveFlags
	sf.register(fs, net.JoinHostPort(cfg.Host, cfg.Port))
	grantsFile := fs.String("grants-file", "", "more client grants, one per line (syntax of FAME_WELCOME_GRANTS)")
	initKey := fs.String("init-key", "", "create the ticket signing key at this path (FAME_WELCOME_KEY_FILE of every welcome service that must share it) unless it exists, print its kid and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *initKey != "" {
		// Several welcome services (one beside each sentinel of a cluster) must sign with one
		// key, since the sentinels and the CA verify tickets and grants against one JWKS; the
		// key is made once, before any of them starts (no service may race to create it).
		k, err := jose.LoadOrCreate(*initKey)
		if err != nil {
			return fmt.Errorf("-init-key: %w", err)
		}
		fmt.Println(k.Kid)
		return nil
	}
	if *grantsFile != "" {
		b, err := os.ReadFile(*grantsFile)
		if err != nil {
			return fmt.Errorf("-grants-file: %w", err)
		}
		more, err := welcome.ParseGrants(string(b))
		if err != nil {
			return fmt.Errorf("-grants-file %s: %w", *grantsFile, err)
		}
		cfg.Grants = append(cfg.Grants, more...)
	}
	log := sf.logger("welcome")
	cfg.Logger = log
	if len(cfg.Targets) > 0 {
		// The readiness probes of a cluster's wss:// sentinels trust the stack CA
		// (FAME_CA_CERTS: a file, or PEM inline) besides the system roots.
		if cfg.ReadyClient, err = readyClient(getenv("FAME_CA_CERTS")); err != nil {
			return err
		}
	}
	svc, err := welcome.New(cfg)
	if err != nil {
		return err
	}
	log.Info("welcome configured", "target", cfg.TargetSystemID, "attach_url", cfg.AttachURL,
		"ca_url", cfg.CAServiceURL, "ticket_issuer", cfg.Issuer, "oauth2_issuer", cfg.Auth.Issuer,
		"anonymous", cfg.AllowAnonymous, "kid", svc.Key().Kid)
	for _, g := range cfg.Grants {
		log.Info("welcome grant", "client", g.Subject, "system_ids", strings.Join(g.SystemIDs, ","),
			"logicals", strings.Join(g.Logicals, ","))
	}
	return serveHTTP(ctx, "welcome", svc, &sf, log)
}

// readyClient is the welcome service's client for the cluster's /readyz probes: no proxy, a
// 500 ms timeout, the system roots plus caCerts (a file, or PEM inline; empty: none).
func readyClient(caCerts string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if caCerts != "" {
		pem := []byte(caCerts)
		if !strings.HasPrefix(strings.TrimSpace(caCerts), "-----BEGIN") {
			b, err := os.ReadFile(caCerts)
			if err != nil {
				return nil, fmt.Errorf("welcome: FAME_CA_CERTS: %w", err)
			}
			pem = b
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("welcome: FAME_CA_CERTS: no PEM certificates")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 500 * time.Millisecond}, nil
}
