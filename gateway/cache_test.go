package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// closingCaller records its Close.
type closingCaller struct {
	fakeCaller
	mu     sync.Mutex
	closed bool
}

func (c *closingCaller) Close() error { c.mu.Lock(); c.closed = true; c.mu.Unlock(); return nil }
func (c *closingCaller) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// cacheFixture is a Gateway whose Connect refuses tokens starting "bad" (as the sentinel's
// admission would) and hands out closingCallers otherwise, counting connects per token.
type cacheFixture struct {
	g        *Gateway
	mu       sync.Mutex
	connects map[string]int
	callers  map[string]*closingCaller
}

func newCacheFixture(t *testing.T, opts Options) *cacheFixture {
	t.Helper()
	f := &cacheFixture{connects: map[string]int{}, callers: map[string]*closingCaller{}}
	opts.Connect = func(_ context.Context, tok string) (Caller, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.connects[tok]++
		if strings.HasPrefix(tok, "bad") {
			return nil, &node.AttachError{Refused: true, Reason: "bad token", CloseCode: -1}
		}
		c := &closingCaller{}
		f.callers[tok] = c
		return c, nil
	}
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	f.g = g
	return f
}

func req(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/rpc", nil)
	r.RemoteAddr = remote
	return r
}

// A caller pushed out of the cache while a request uses it is closed only when that request
// is done with it: an HTTP client flooding the cache cannot cut another's call short.
func TestGatewayEvictionWaitsForUsers(t *testing.T) {
	f := newCacheFixture(t, Options{MaxCallers: 1, ConnectBurst: 100})
	ctx := context.Background()
	_, releaseA, err := f.g.caller(ctx, req("10.0.0.1:1"), "token-a")
	if err != nil {
		t.Fatal(err)
	}
	_, releaseB, err := f.g.caller(ctx, req("10.0.0.2:1"), "token-b") // evicts token-a's node
	if err != nil {
		t.Fatal(err)
	}
	defer releaseB()
	if f.callers["token-a"].isClosed() {
		t.Fatal("an evicted caller was closed under the request using it")
	}
	releaseA()
	waitClosed(t, f.callers["token-a"])
}

// Tokens the sentinel refused are remembered apart: a stream of bad tokens costs one attach
// each at most once per refusedTTL and never evicts the callers of good tokens.
func TestGatewayRefusedTokensDoNotEvict(t *testing.T) {
	f := newCacheFixture(t, Options{MaxCallers: 2, ConnectBurst: 1000})
	ctx := context.Background()
	_, release, err := f.g.caller(ctx, req("10.0.0.1:1"), "good")
	if err != nil {
		t.Fatal(err)
	}
	release()
	for i := 0; i < 50; i++ {
		for j := 0; j < 2; j++ { // the replay is answered from memory
			if _, _, err := f.g.caller(ctx, req("10.0.0.9:1"), "bad-"+string(rune('a'+i%26))+string(rune('a'+i/26))); err == nil {
				t.Fatal("a refused token got a caller")
			}
		}
	}
	if _, release, err = f.g.caller(ctx, req("10.0.0.1:1"), "good"); err != nil {
		t.Fatal(err)
	}
	release()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.connects["good"] != 1 || f.callers["good"].isClosed() {
		t.Fatalf("the good token connected %d times (closed %v) after 50 refused tokens: they evicted it", f.connects["good"], f.callers["good"].isClosed())
	}
	for tok, n := range f.connects {
		if strings.HasPrefix(tok, "bad") && n != 1 {
			t.Fatalf("refused token %s attached %d times, want 1", tok, n)
		}
	}
}

// New caller nodes are limited per HTTP client address: past the burst the request is
// refused 429 connect_rate_limited with Retry-After, counted; other addresses are unaffected.
func TestGatewayConnectRateLimited(t *testing.T) {
	f := newCacheFixture(t, Options{ConnectRate: 0.1, ConnectBurst: 2})
	srv := httptest.NewServer(f.g.Handler())
	defer srv.Close()
	body := `{"targetAddr":"a@fame.fabric","method":"m"}`
	for i, tok := range []string{"t1", "t2", "t3"} {
		resp, out := do(t, "POST", srv.URL+DefaultBasePath+"/rpc", body, map[string]string{"Authorization": "Bearer " + tok})
		if i < 2 && resp.StatusCode != 200 {
			t.Fatalf("connect %d within the burst: %d %v", i, resp.StatusCode, out)
		}
		if i == 2 {
			if resp.StatusCode != http.StatusTooManyRequests || out["code"] != "connect_rate_limited" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("connect past the burst: %d %v Retry-After %q", resp.StatusCode, out, resp.Header.Get("Retry-After"))
			}
		}
	}
	// A token already connected is served without a new connect.
	if resp, out := do(t, "POST", srv.URL+DefaultBasePath+"/rpc", body, map[string]string{"Authorization": "Bearer t1"}); resp.StatusCode != 200 {
		t.Fatalf("cached caller refused: %d %v", resp.StatusCode, out)
	}
	// Another client address has its own budget.
	if _, _, err := f.g.caller(context.Background(), req("10.9.9.9:1"), "t4"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func waitClosed(t *testing.T, c *closingCaller) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c.isClosed() {
			return
		}
		sleepBriefly()
	}
	t.Fatal("the caller was not closed after its last user released it")
}

// sleepBriefly lets closeEntry's goroutine run (it waits for the entry's ready channel, which
// is already closed).
func sleepBriefly() { <-time.After(5 * time.Millisecond) }
