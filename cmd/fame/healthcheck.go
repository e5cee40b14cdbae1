package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func init() { register("healthcheck", runHealthcheck) }

// errUnhealthy marks a health endpoint that answered, but not with a 2xx status.
var errUnhealthy = errors.New("unhealthy")

// runHealthcheck probes one health URL and exits non-zero unless it answers 2xx:
//
//	fame healthcheck [-timeout 3s] [-ca FILE] [-contains TEXT] URL
//
// Container images built FROM scratch have no shell or curl, so Docker's HEALTHCHECK runs the
// fame binary itself. -contains also requires TEXT in the body: a replica, which serves no
// HTTP, is healthy once the sentinel's /stats lists the address it advertised. -ca (default FAME_CA_CERTS when it is a file) adds a PEM bundle to the
// trusted roots for https:// URLs served with certificates from 'fame ca server-cert'.
func runHealthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	caFile := fs.String("ca", defaultHealthCA(), "PEM bundle to trust for https:// URLs (in addition to the system roots)")
	quiet := fs.Bool("q", false, "print nothing on success")
	contains := fs.String("contains", "", "also require this text in the response body")
	token := fs.String("token", os.Getenv("FAME_ADMIN_TOKEN"), "admin bearer token for the sentinel's /stats (default FAME_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: fame healthcheck [-timeout 3s] [-ca FILE] [-contains TEXT] URL")
	}
	client, err := healthClient(*caFile, *timeout)
	if err != nil {
		return err
	}
	if *token != "" {
		client.Transport = bearer{next: client.Transport, token: *token}
	}
	status, err := probe(ctx, client, fs.Arg(0), *contains)
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Println(status)
	}
	return nil
}

// defaultHealthCA is FAME_CA_CERTS when it names a file (it may also hold inline PEM, which
// is not a path).
func defaultHealthCA() string {
	v := os.Getenv("FAME_CA_CERTS")
	if v == "" || strings.HasPrefix(v, "-----BEGIN") {
		return ""
	}
	return v
}

func healthClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // a health probe talks to its neighbour, never through a proxy
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("healthcheck: -ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("healthcheck: -ca %s: no PEM certificates", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// maxHealthBody bounds what a probe reads: /stats of a big fabric is large, but a health
// probe must not buffer without limit.
const maxHealthBody = 4 << 20

// probe GETs url and returns "<status line> <url>" for a 2xx answer whose body contains
// contains (when not empty).
func probe(ctx context.Context, client *http.Client, url, contains string) (string, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return "", fmt.Errorf("healthcheck: %q is not an http:// or https:// URL", url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil {
		return "", fmt.Errorf("healthcheck: %s: read body: %w", url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("healthcheck: %s: %w (%s)", url, errUnhealthy, resp.Status)
	}
	if contains != "" && !bytes.Contains(body, []byte(contains)) {
		return "", fmt.Errorf("healthcheck: %s: %w (body lacks %q)", url, errUnhealthy, contains)
	}
	return resp.Status + " " + url, nil
}

// bearer adds the admin token to every request of a probe: a sentinel with FAME_ADMIN_TOKEN
// set answers /stats only with it.
type bearer struct {
	next  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
