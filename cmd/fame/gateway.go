package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/gateway"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/node/admit"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/sentinel"
)

// selfDial is how the gateway's caller nodes reach this sentinel: its own listener, never a
// second, unauthenticated port.
type selfDial struct {
	addr  atomic.Value // "host:port", stored once the sentinel listens
	certs *certStore   // nil: plain ws; else wss, trusting exactly the certificate being served
}

// url is the attach URL for the caller nodes ("" before the sentinel listens).
func (d *selfDial) url() string {
	addr, _ := d.addr.Load().(string)
	if addr == "" {
		return ""
	}
	scheme := "ws"
	if d.certs != nil {
		scheme = "wss"
	}
	return scheme + "://" + addr + "/fame/v1/attach/ws/downstream"
}

// httpClient is nil for plain ws. For wss it pins the leaf: the handshake must present
// exactly the certificate the listener serves at that moment (certs, so a reload's rotation
// is followed), which proves the peer holds its private key. A chain check against roots would
// need the certificate to name 127.0.0.1 and the operator's CA to be in the system pool, which
// a sentinel's certificate for its public name need not; the pin is stricter than both. No
// proxy: the dial goes straight to the loopback listener.
func (d *selfDial) httpClient() *http.Client {
	if d.certs == nil {
		return nil
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		// Verification is VerifyConnection's pin below, not the chain-and-name check.
		InsecureSkipVerify: true, //nolint:gosec // the leaf is pinned in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return d.pinned(cs.PeerCertificates)
		},
	}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: cfg, ForceAttemptHTTP2: false,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext}
	return &http.Client{Transport: tr}
}

// errNotOwnCertificate: the TLS peer a caller node reached is not this sentinel's listener.
var errNotOwnCertificate = errors.New("gateway: the TLS peer did not present this sentinel's certificate")

func (d *selfDial) pinned(peer []*x509.Certificate) error {
	cur := d.certs.cur.Load()
	if len(peer) == 0 || cur == nil || len(cur.Certificate) == 0 || !bytes.Equal(peer[0].Raw, cur.Certificate[0]) {
		return errNotOwnCertificate
	}
	return nil
}

// newGateway builds the HTTP gateway for a sentinel with opts: each HTTP caller's requests
// go through a node that attaches to this sentinel's own listener (loopback; wss with the
// certificate pinned when the sentinel serves TLS) with the caller's bearer token, so the
// sentinel's own admission checks it and the envelopes carry the caller's identity. A token is
// required whenever the admission profile requires one of nodes. Callers only connect once
// the sentinel listens (dial.addr set).
//
// Under strict-overlay (which Options.validate allows only with welcome admission and a
// welcome URL) a caller's node is admitted exactly as a node of its own: the caller's bearer
// is its hello credential at the welcome service, which may refuse it (401) and which names the
// CA; the node gets a certificate of its own from that CA for a key of its own and signs what
// it sends with it. The attach ticket is presented here, on this sentinel's own listener, not
// at the grant's attach URL (which may name this sentinel by a public address).
func newGateway(opts sentinel.Options, dial *selfDial, log *slog.Logger) (*gateway.Gateway, error) {
	strict := opts.SecurityProfile == security.ProfileStrictOverlay
	if strict && (opts.AdmissionProfile != sentinel.AdmissionWelcome || opts.Gateway.WelcomeURL == "") {
		// Options.validate refuses this already; kept so that no other path mounts it.
		return nil, fmt.Errorf("gateway: under %s it needs welcome admission and a welcome URL", opts.SecurityProfile)
	}
	requireToken := opts.AdmissionProfile == sentinel.AdmissionDirect || opts.AdmissionProfile == sentinel.AdmissionWelcome
	client := dial.httpClient()
	return gateway.New(gateway.Options{
		BodyLimit:      opts.Gateway.BodyLimit,
		AllowedOrigins: opts.Gateway.AllowedOrigins,
		RequireToken:   requireToken,
		Logger:         log.With("component", "gateway"),
		Connect: func(ctx context.Context, tok string) (gateway.Caller, error) {
			u := dial.url()
			if u == "" {
				return nil, fmt.Errorf("gateway: the sentinel is not listening yet")
			}
			cfg := node.Config{
				URL:             u,
				HTTPClient:      client,
				SecurityProfile: string(opts.SecurityProfile),
				Delivery:        string(opts.DeliveryProfile),
				Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			if strict {
				adm, err := admit.New(admit.Settings{Profile: admit.ProfileWelcome, ServiceURL: opts.Gateway.WelcomeURL,
					CACerts: opts.TrustBundle}, admit.Options{Bearer: staticBearer(tok)})
				if err != nil {
					return nil, fmt.Errorf("gateway: caller admission: %w", err)
				}
				cfg.Admission = adm
				cfg.AttachURL = func(context.Context) (string, error) { return u, nil }
				return node.Connect(ctx, cfg)
			}
			if tok != "" {
				cfg.Token = func(context.Context) (string, error) { return tok, nil }
			}
			return node.Connect(ctx, cfg)
		},
	})
}

// staticBearer is a caller's own bearer token as a welcome hello credential.
type staticBearer string

func (b staticBearer) Token(context.Context) (string, error) {
	if b == "" {
		return "", fmt.Errorf("gateway: a bearer token is required")
	}
	return string(b), nil
}

// selfAddr is the address the gateway's caller nodes dial for a listener on l: loopback when
// it listens on every interface, else the very address it listens on.
func selfAddr(l net.Listener) string {
	host, port, _ := net.SplitHostPort(l.Addr().String())
	// An unspecified address under network "tcp" is dual-stack, so 127.0.0.1 reaches it.
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return l.Addr().String()
}
