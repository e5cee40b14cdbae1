package admit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/fame-go/fame/envelope"
)

// DefaultTimeout bounds one request to an admission service (the reference
// CA client uses 30 s; the token and welcome calls are small).
const DefaultTimeout = 15 * time.Second

// maxResponse bounds a successful answer: a NodeWelcome is an envelope, so
// the envelope limit applies; tokens and certificate chains are far smaller.
const maxResponse = envelope.MaxMessageSize

// request is one POST to an admission service.
type request struct {
	op, url     string
	contentType string
	body        []byte
	header      http.Header
	basicUser   string // set together with basicPass for client_secret_basic
	basicPass   string
}

// post sends r with client under a timeout and returns the 2xx body. Every
// failure is classified: *HTTPError for non-2xx, ErrUnavailable (+ErrTimeout)
// for transport failures.
func post(ctx context.Context, client *http.Client, timeout time.Duration, r request) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: bad URL %q: %v", ErrConfig, r.op, r.url, err)
	}
	req.Header.Set("Content-Type", r.contentType)
	req.Header.Set("Accept", "application/json")
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.basicUser != "" {
		req.SetBasicAuth(r.basicUser, r.basicPass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, transportError(ctx, r, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, newHTTPError(r.op, r.url, resp.StatusCode, b)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, transportError(ctx, r, err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("%w: %s: answer from %s larger than %d bytes", ErrBadResponse, r.op, r.url, maxResponse)
	}
	return b, nil
}

func transportError(ctx context.Context, r request, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %w: %s: POST %s: %v", ErrUnavailable, ErrTimeout, r.op, r.url, err)
	}
	return fmt.Errorf("%w: %s: POST %s: %w", ErrUnavailable, r.op, r.url, err)
}

// NewHTTPClient returns a client for the admission services. rootsPEM, when
// not empty, adds those CA certificates (FAME_CA_CERTS) to the system roots,
// so the services may use either a public certificate, the dev proxy's CA
// (SSL_CERT_FILE, read by the system pool) or the Fame CA.
func NewHTTPClient(rootsPEM []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(rootsPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(rootsPEM) {
			return nil, fmt.Errorf("%w: FAME_CA_CERTS holds no PEM certificate", ErrConfig)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	// The per-request timeout is applied by post; this one only catches a
	// caller that passes a context without deadline to a raw Do.
	return &http.Client{Transport: tr, Timeout: 2 * DefaultTimeout}, nil
}
