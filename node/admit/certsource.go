package admit

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

// GrantSource yields the current welcome grant; *WelcomeTokenSource is one.
type GrantSource interface {
	Grant(ctx context.Context) (*Grant, error)
}

// Certificate is a node certificate with its key.
type Certificate struct {
	Key      ed25519.PrivateKey
	ChainPEM []byte              // leaf first, no root
	Chain    []*x509.Certificate // parsed ChainPEM
	SID      string              // secure digest of the assigned path (the SPIFFE node id)
	NotAfter time.Time
}

// CertConfig configures a CertSource.
type CertConfig struct {
	Grants GrantSource // required
	// Key is the node's signing key; nil = one generated with
	// security.NewNodeKey and kept for every renewal, so the node's signing
	// JWK stays the same and only its x5c changes.
	Key ed25519.PrivateKey
	// Trust (FAME_CA_CERTS) verifies every issued chain; nil skips that
	// check (the leaf must still carry our key).
	Trust *x509bundle.Bundle

	HTTPClient *http.Client
	Timeout    time.Duration // one sign request; default CATimeout
	Now        func() time.Time
}

// CertSource obtains a node certificate from the CA named by the welcome's
// ca_sign grant and re-issues it once 2/3 of its life has passed (the
// reference never renews and its nodes fail after a day). Safe for
// concurrent use.
type CertSource struct {
	cfg CertConfig
	r   *renewer[*Certificate]
}

// NewCertSource validates cfg and returns the renewing source.
func NewCertSource(cfg CertConfig) (*CertSource, error) {
	if cfg.Grants == nil {
		return nil, fmt.Errorf("%w: certificate source needs a grant source", ErrConfig)
	}
	if cfg.Key == nil {
		k, err := security.NewNodeKey()
		if err != nil {
			return nil, fmt.Errorf("admit: %w", err)
		}
		cfg.Key = k
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: node key is not an Ed25519 private key", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = CATimeout
	}
	s := &CertSource{cfg: cfg}
	// The renewer's budget covers a hello (when the CA grant is stale) and
	// the sign request.
	s.r = newRenewer("node certificate", cfg.Now, cfg.Timeout+DefaultTimeout, s.issue)
	return s, nil
}

// Certificate returns the current certificate, requesting or renewing it
// when due.
func (s *CertSource) Certificate(ctx context.Context) (*Certificate, error) { return s.r.get(ctx) }

// CertificateFor returns a certificate for the node at assignedPath: the
// current one when it carries that path's sid, else a new one issued on the
// current welcome grant. A node that is placed on another sentinel (its own
// died, and a new hello placed it elsewhere) gets a new physical path, and a
// strict-overlay sentinel refuses a signing key whose certificate names
// another path's sid; the key, and so the kid, stay the same. ErrPlacement
// when the grant the CA signed for names another path (it changed while the
// certificate was issued): the caller asks again with the new grant.
func (s *CertSource) CertificateFor(ctx context.Context, assignedPath string) (*Certificate, error) {
	want := envelope.SecureDigest(assignedPath)
	c, err := s.Certificate(ctx)
	if err != nil || c.SID == want {
		return c, err
	}
	// One for another path: issue anew rather than serve it until its
	// renewal point.
	s.r.invalidate()
	if c, err = s.Certificate(ctx); err != nil {
		return nil, err
	}
	if c.SID != want {
		return nil, fmt.Errorf("%w: certificate issued for sid %s, the grant places us at %s", ErrPlacement, c.SID, assignedPath)
	}
	return c, nil
}

// Key is the node key certificates are issued for.
func (s *CertSource) Key() ed25519.PrivateKey { return s.cfg.Key }

// Run keeps the certificate fresh in the background until ctx ends, calling
// onRenew (if not nil) with every new certificate, the first included, so
// the node can re-announce its keys. Failures are retried with backoff
// while the current certificate lasts; Run returns only ctx's error.
func (s *CertSource) Run(ctx context.Context, onRenew func(*Certificate)) error {
	var last *Certificate
	backoff := time.Second
	for {
		c, err := s.Certificate(ctx)
		wait := backoff
		if err == nil {
			backoff = time.Second
			if c != last {
				last = c
				if onRenew != nil {
					onRenew(c)
				}
			}
			_, renewAt, _, lastErr := s.r.state()
			wait = renewAt.Sub(s.cfg.Now())
			if lastErr != nil || wait < 0 {
				// A renewal failed and the old certificate is served.
				wait = backoff
				backoff = min(backoff*2, time.Minute)
			}
		} else {
			backoff = min(backoff*2, time.Minute)
		}
		t := time.NewTimer(max(wait, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *CertSource) issue(ctx context.Context, _ time.Time) (*Certificate, time.Time, error) {
	c, err := s.issueOnce(ctx)
	// A refused CA grant is retried once with a fresh welcome.
	if inv, ok := s.cfg.Grants.(invalidator); ok && errors.Is(err, ErrUnauthorized) {
		inv.Invalidate()
		c, err = s.issueOnce(ctx)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	return c, c.NotAfter, nil
}

func (s *CertSource) issueOnce(ctx context.Context) (*Certificate, error) {
	g, err := s.cfg.Grants.Grant(ctx)
	if err != nil {
		return nil, err
	}
	if g.CAURL == "" {
		return nil, ErrNoCAGrant
	}
	csr, err := security.CreateCSR(s.cfg.Key, g.SystemID, g.AcceptedLogicals)
	if err != nil {
		return nil, fmt.Errorf("admit: %w", err)
	}
	chainPEM, err := requestCertificate(ctx, s.cfg.HTTPClient, s.cfg.Timeout, g.CAURL, g.CAHeaderName, g.CAToken,
		csr, g.SystemID, g.AssignedPath, g.AcceptedLogicals)
	if err != nil {
		return nil, err
	}
	return s.check(chainPEM, g)
}

// check makes sure the CA certified our key, and (with a trust bundle) that
// the chain verifies for the assigned path's sid.
func (s *CertSource) check(chainPEM []byte, g *Grant) (*Certificate, error) {
	chain, err := security.ParseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(ed25519.PublicKey)
	if !ok || !pub.Equal(s.cfg.Key.Public()) {
		return nil, fmt.Errorf("%w: the CA certified another key", ErrBadResponse)
	}
	c := &Certificate{Key: s.cfg.Key, ChainPEM: chainPEM, Chain: chain, NotAfter: leaf.NotAfter}
	if g.AssignedPath != "" {
		c.SID = envelope.SecureDigest(g.AssignedPath)
	}
	if s.cfg.Trust != nil {
		id, err := security.VerifyNodeCert(chainPEM, s.cfg.Trust, c.SID, s.cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("%w: issued certificate does not verify: %w", ErrBadResponse, err)
		}
		c.SID = id.SID
	}
	return c, nil
}
