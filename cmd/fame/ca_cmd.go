package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/fame-go/fame/admission/ca"
)

func init() { register("ca", runCA) }

// runCA serves the dev CA, or with a first argument manages its files:
//
//	fame ca [flags]                                      serve (FAME_CA_DIR or -dir, FAME_CA_* ...)
//	fame ca init -dir DIR [-dns a,b -out PREFIX]         create root + intermediate (idempotent)
//	fame ca server-cert -dir DIR -dns a,b -out PREFIX    TLS server certificate for the services
//	fame ca cluster-cert -dir DIR -dns a,b -out PREFIX   TLS certificate of a clustered sentinel's
//	                                                     NATS links (server and client auth: mutual TLS)
func runCA(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "init":
			return runCAInit(args[1:])
		case "server-cert":
			return runCAServerCert(args[1:], false)
		case "cluster-cert":
			return runCAServerCert(args[1:], true)
		case "serve":
			args = args[1:]
		}
	}
	cfg, err := ca.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("ca", flag.ContinueOnError)
	var sf serveFlags
	sf.register(fs, net.JoinHostPort(cfg.Host, cfg.Port))
	fs.StringVar(&cfg.Dir, "dir", cfg.Dir, "CA directory made by 'fame ca init' (created if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := sf.logger("ca")
	srv, auth, err := ca.New(cfg, log)
	if err != nil {
		return err
	}
	log.Info("ca configured", "dir", cfg.Dir, "root", auth.Root.Subject.String(), "signer", auth.Signer.Subject.String(),
		"grant_issuer", cfg.GrantIssuer, "grant_jwks", cfg.GrantJWKSURL, "unauthenticated", cfg.AllowUnauthenticated)
	return serveHTTP(ctx, "ca", srv, &sf, log)
}

// certFlags are the flags of init and server-cert.
type certFlags struct {
	dir, dns, out string
	cluster       bool // issue for mutual TLS (server and client auth)
}

func (c *certFlags) parse(name string, args []string) error {
	fs := flag.NewFlagSet("ca "+name, flag.ContinueOnError)
	fs.StringVar(&c.dir, "dir", os.Getenv("FAME_CA_DIR"), "CA directory")
	fs.StringVar(&c.dns, "dns", "", "comma-separated DNS names / IP addresses for a TLS server certificate")
	fs.StringVar(&c.out, "out", "", "write the server certificate to PREFIX.crt and its key to PREFIX.key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.dir == "" {
		return errors.New("-dir is required")
	}
	if (c.dns == "") != (c.out == "") {
		return errors.New("-dns and -out go together")
	}
	return nil
}

func runCAInit(args []string) error {
	var c certFlags
	if err := c.parse("init", args); err != nil {
		return err
	}
	a, err := ca.InitCA(c.dir)
	if err != nil {
		return err
	}
	fmt.Printf("CA ready in %s (root %s, valid until %s)\n", c.dir, filepath.Join(c.dir, ca.RootCertFile),
		a.Root.NotAfter.Format("2006-01-02"))
	if c.dns != "" {
		return writeServerCert(a, c)
	}
	return nil
}

// runCAServerCert issues a server certificate, or with cluster one for both ends of the
// cluster's mutual-TLS links.
func runCAServerCert(args []string, cluster bool) error {
	var c certFlags
	name := "server-cert"
	if cluster {
		name = "cluster-cert"
	}
	c.cluster = cluster
	if err := c.parse(name, args); err != nil {
		return err
	}
	if c.dns == "" {
		return errors.New("-dns and -out are required")
	}
	a, err := ca.InitCA(c.dir)
	if err != nil {
		return err
	}
	return writeServerCert(a, c)
}

// writeServerCert issues a certificate for c.dns and writes PREFIX.crt (leaf then
// intermediates, what tls.LoadX509KeyPair and most servers expect) and PREFIX.key (PKCS#8, 0600).
func writeServerCert(a *ca.Authority, c certFlags) error {
	var names []string
	for _, n := range strings.Split(c.dns, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	issue := a.IssueServerCert
	if c.cluster {
		issue = a.IssueClusterCert
	}
	tc, err := issue(names)
	if err != nil {
		return err
	}
	var chain []byte
	for _, der := range tc.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(tc.PrivateKey)
	if err != nil {
		return fmt.Errorf("encode server key: %w", err)
	}
	if dir := filepath.Dir(c.out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(c.out+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(c.out+".crt", chain, 0o644); err != nil {
		return err
	}
	fmt.Printf("server certificate for %s: %s.crt, key %s.key (clients trust %s, e.g. SSL_CERT_FILE / NODE_EXTRA_CA_CERTS)\n",
		strings.Join(names, ", "), c.out, c.out, filepath.Join(c.dir, ca.RootCertFile))
	return nil
}
