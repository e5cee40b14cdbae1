package token

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/jose"
)

type jwksServer struct {
	mu     sync.Mutex
	keys   []*jose.SigningKey
	status int
	body   string
	hits   atomic.Int32
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	if s.body != "" {
		_, _ = w.Write([]byte(s.body))
		return
	}
	_ = json.NewEncoder(w).Encode(jose.SetOf(s.keys...))
}

func TestJWKSClient(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	js := &jwksServer{keys: []*jose.SigningKey{k1}}
	srv := httptest.NewServer(js)
	defer srv.Close()
	now := t0
	c := NewJWKSClient(srv.URL, JWKSOptions{TTL: time.Minute, MinRefresh: 10 * time.Second})
	c.now = func() time.Time { return now }
	ctx := context.Background()

	if k, err := c.Key(ctx, k1.Kid); err != nil || !k.Equal(k1.Public()) {
		t.Fatalf("first fetch: %v", err)
	}
	if _, err := c.Key(ctx, k1.Kid); err != nil || js.hits.Load() != 1 {
		t.Fatalf("cached lookup fetched again (hits=%d, err=%v)", js.hits.Load(), err)
	}
	// Key rotation: unknown kid right after a fetch is rate limited...
	js.mu.Lock()
	js.keys = []*jose.SigningKey{k1, k2}
	js.mu.Unlock()
	if _, err := c.Key(ctx, k2.Kid); !errors.Is(err, ErrUnknownKey) || js.hits.Load() != 1 {
		t.Fatalf("unknown kid within MinRefresh: err=%v hits=%d", err, js.hits.Load())
	}
	// ...and refetched once MinRefresh has passed.
	now = now.Add(11 * time.Second)
	if k, err := c.Key(ctx, k2.Kid); err != nil || !k.Equal(k2.Public()) || js.hits.Load() != 2 {
		t.Fatalf("refresh on unknown kid: err=%v hits=%d", err, js.hits.Load())
	}
	// Issuer down after TTL: stale known key is still served, unknown kid is unavailable.
	now = now.Add(2 * time.Minute)
	js.mu.Lock()
	js.status = http.StatusBadGateway
	js.mu.Unlock()
	if _, err := c.Key(ctx, k1.Kid); err != nil {
		t.Fatalf("stale key not served while issuer down: %v", err)
	}
	now = now.Add(11 * time.Second)
	if _, err := c.Key(ctx, "nope"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("err = %v, want keys_unavailable", err)
	}
}

func TestJWKSClientBadResponses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":  "<html>",
		"oversized": `{"keys":[],"pad":"` + strings.Repeat("x", 2048) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(&jwksServer{body: body})
			defer srv.Close()
			c := NewJWKSClient(srv.URL, JWKSOptions{MaxBytes: 1024})
			if _, err := c.Key(context.Background(), "k"); !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("err = %v, want keys_unavailable", err)
			}
		})
	}
}

func TestJWKSClientTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c := NewJWKSClient(srv.URL, JWKSOptions{Timeout: 50 * time.Millisecond})
	if _, err := c.Key(context.Background(), "k"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("err = %v, want keys_unavailable after timeout", err)
	}
}

func TestOAuth2SettingsFromEnv(t *testing.T) {
	env := map[string]string{"FAME_JWT_TRUSTED_ISSUER": "https://oauth2-server/", "FAME_JWT_AUDIENCE": "fame.fabric"}
	s := OAuth2SettingsFromEnv(func(k string) string { return env[k] })
	if s.JWKSURL != "https://oauth2-server/.well-known/jwks.json" || s.Audience != "fame.fabric" ||
		len(s.RequiredScopes) != 1 || s.RequiredScopes[0] != ScopeNodeConnect {
		t.Fatalf("settings = %+v", s)
	}
	env["FAME_JWKS_URL"] = "https://welcome/jwks"
	if s := OAuth2SettingsFromEnv(func(k string) string { return env[k] }); s.JWKSURL != "https://welcome/jwks" {
		t.Fatalf("explicit JWKS URL ignored: %+v", s)
	}
}
