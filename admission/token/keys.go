package token

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/fame-go/fame/security"
)

// KeySource resolves a kid to an Ed25519 public key. It returns an *Error
// with ReasonUnknownKey when the kid is not known, ReasonKeysUnavailable when
// the keys could not be obtained.
type KeySource interface {
	Key(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// StaticKeys is a fixed kid → key map (tests, or keys distributed by file).
type StaticKeys map[string]ed25519.PublicKey

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, refuse(ReasonUnknownKey, "kid %q", kid)
}

// JWKSOptions tune a JWKSClient; zero values take the defaults.
type JWKSOptions struct {
	HTTPClient *http.Client  // default: a client with Timeout
	Timeout    time.Duration // per fetch, default 5 s
	// TTL after which a cached set is refetched on next use, default 5 min.
	TTL time.Duration
	// MinRefresh is the least time between two fetches triggered by unknown
	// kids, default 10 s, so a flood of tokens with random kids cannot turn
	// the verifier into a request amplifier against the issuer.
	MinRefresh time.Duration
	MaxBytes   int64 // response size cap, default 1 MiB
}

// JWKSClient fetches a JWKS document on demand and caches it. It starts no
// goroutines: fetches happen in the caller's Key call, serialized by a mutex
// so concurrent misses cause one request.
type JWKSClient struct {
	url  string
	opts JWKSOptions
	now  func() time.Time

	fetchMu     sync.Mutex // held for the duration of a fetch; guards the two below
	lastAttempt time.Time
	lastErr     error

	mu        sync.RWMutex
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time
}

// NewJWKSClient returns a client for url.
func NewJWKSClient(url string, opts JWKSOptions) *JWKSClient {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.Timeout}
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = 10 * time.Second
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 20
	}
	return &JWKSClient{url: url, opts: opts, now: time.Now}
}

// Key implements KeySource: cached key if fresh, otherwise one refetch.
func (c *JWKSClient) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if k, fresh := c.lookup(kid); k != nil && fresh {
		return k, nil
	}
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	// Another caller may have refreshed the set while we waited for the lock.
	k, fresh := c.lookup(kid)
	if k != nil && fresh {
		return k, nil
	}
	if !c.lastAttempt.IsZero() && c.now().Sub(c.lastAttempt) < c.opts.MinRefresh {
		return c.unfetched(kid, k)
	}
	c.lastAttempt = c.now()
	c.lastErr = c.fetch(ctx)
	if k2, _ := c.lookup(kid); k2 != nil {
		return k2, nil
	}
	return c.unfetched(kid, k)
}

// unfetched answers without a new fetch: a stale key is better than failing
// while the issuer is down; otherwise say whether the kid is unknown or the
// keys could not be obtained at all.
func (c *JWKSClient) unfetched(kid string, stale ed25519.PublicKey) (ed25519.PublicKey, error) {
	if stale != nil {
		return stale, nil
	}
	if c.lastErr != nil {
		return nil, &Error{Reason: ReasonKeysUnavailable, Err: c.lastErr}
	}
	return nil, refuse(ReasonUnknownKey, "kid %q not in JWKS %s", kid, c.url)
}

func (c *JWKSClient) lookup(kid string) (ed25519.PublicKey, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.keys[kid], c.now().Sub(c.fetchedAt) < c.opts.TTL
}

var errJWKSStatus = errors.New("jwks: unexpected HTTP status")

func (c *JWKSClient) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("jwks: build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: get %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w %d from %s", errJWKSStatus, resp.StatusCode, c.url)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxBytes+1))
	if err != nil {
		return fmt.Errorf("jwks: read %s: %w", c.url, err)
	}
	if int64(len(body)) > c.opts.MaxBytes {
		return fmt.Errorf("jwks: %s larger than %d bytes", c.url, c.opts.MaxBytes)
	}
	keys, err := security.ParseSigningJWKS(body)
	if err != nil {
		return fmt.Errorf("jwks: %s: %w", c.url, err)
	}
	c.mu.Lock()
	c.keys, c.fetchedAt = keys, c.now()
	c.mu.Unlock()
	return nil
}
