package admit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOAuth2TokenFetchedAndCached(t *testing.T) {
	clk := newFakeClock()
	s := newStack(t, stackOpts{clock: clk.Now, tokenTTL: time.Hour})
	src, err := s.clientCredentials().TokenSource()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.verifyAccess(t, tok)
	clk.Advance(39 * time.Minute) // before 2/3 of the hour
	again, err := src.Token(t.Context())
	if err != nil || again != tok {
		t.Fatalf("cached token: %v, same=%v", err, again == tok)
	}
	if n := s.tokens.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
}

func TestOAuth2RenewsAtTwoThirds(t *testing.T) {
	clk := newFakeClock()
	s := newStack(t, stackOpts{clock: clk.Now, tokenTTL: 30 * time.Second})
	src, err := s.clientCredentials().TokenSource()
	if err != nil {
		t.Fatal(err)
	}
	first, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at       time.Duration // since the first fetch
		requests int64
		same     bool
	}{
		{at: 10 * time.Second, requests: 1, same: true},
		{at: 19*time.Second + 900*time.Millisecond, requests: 1, same: true},
		{at: 20 * time.Second, requests: 2, same: false}, // 2/3 of 30 s
		{at: 21 * time.Second, requests: 2, same: false},
	}
	t0 := clk.Now()
	for _, tc := range tests {
		clk.Advance(t0.Add(tc.at).Sub(clk.Now()))
		tok, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("at %v: %v", tc.at, err)
		}
		if got := s.tokens.Load(); got != tc.requests {
			t.Fatalf("at %v: %d token requests, want %d", tc.at, got, tc.requests)
		}
		if (tok == first) != tc.same {
			t.Fatalf("at %v: same token = %v, want %v", tc.at, tok == first, tc.same)
		}
		s.verifyAccess(t, tok)
	}
}

func TestOAuth2SingleFlight(t *testing.T) {
	s := newStack(t, stackOpts{})
	src, err := s.clientCredentials().TokenSource()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	toks := make([]string, 32)
	errs := make([]error, 32)
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = src.Token(t.Context()) })
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: %v (same token %v)", i, errs[i], toks[i] == toks[0])
		}
	}
	if n := s.tokens.Load(); n != 1 {
		t.Fatalf("%d token requests for 32 concurrent callers, want 1", n)
	}
}

// A caller that gives up must not fail the fetch others are waiting on.
func TestOAuth2CallerCancelDoesNotPoisonFetch(t *testing.T) {
	s := newStack(t, stackOpts{})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		s.oSrv.Config.Handler.ServeHTTP(w, r)
	}))
	defer slow.Close()
	cc := s.clientCredentials()
	cc.TokenURL = slow.URL + "/oauth/token"
	src, err := cc.TokenSource()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := src.Token(ctx); done <- err }()
	second := make(chan error, 1)
	go func() { _, err := src.Token(t.Context()); second <- err }()
	// Real time: both callers wait on a fetch held by a loopback HTTP server (the stack's
	// services are httptest servers), which testing/synctest cannot see as blocked.
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("second caller: %v", err)
	}
}

// A failed renewal keeps serving the still-valid token.
func TestOAuth2RenewalFailureServesCurrentToken(t *testing.T) {
	clk := newFakeClock()
	s := newStack(t, stackOpts{clock: clk.Now, tokenTTL: 30 * time.Second})
	cc := s.clientCredentials()
	var down bool
	var mu sync.Mutex
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := down
		mu.Unlock()
		if d {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		s.oSrv.Config.Handler.ServeHTTP(w, r)
	}))
	defer gate.Close()
	cc.TokenURL = gate.URL + "/oauth/token"
	src, _ := cc.TokenSource()
	first, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	down = true
	mu.Unlock()
	clk.Advance(25 * time.Second) // past 2/3, before expiry
	tok, err := src.Token(t.Context())
	if err != nil || tok != first {
		t.Fatalf("during outage: %v (same %v)", err, tok == first)
	}
	clk.Advance(6 * time.Second) // expired now
	if _, err := src.Token(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after expiry during outage: %v, want ErrUnavailable", err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	tok, err = src.Token(t.Context())
	if err != nil || tok == first {
		t.Fatalf("after recovery: %v (same %v)", err, tok == first)
	}
	s.verifyAccess(t, tok)
}

func TestOAuth2Errors(t *testing.T) {
	s := newStack(t, stackOpts{})
	release := make(chan struct{})
	defer close(release)
	fixed := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)

	tests := []struct {
		name     string
		url      string
		secret   string
		want     []error
		status   int
		code     string
		contains string
	}{
		{name: "wrong secret", url: s.oSrv.URL + "/oauth/token", secret: "nope", want: []error{ErrUnauthorized},
			status: 401, code: "invalid_client"},
		{name: "reference nested detail", url: fixed(400, `{"detail":{"error":"invalid_request","error_description":"bad"}}`),
			want: []error{ErrRejected}, status: 400, code: "invalid_request", contains: "bad"},
		{name: "server error text", url: fixed(502, "<html>bad gateway</html>"), want: []error{ErrUnavailable},
			status: 502, contains: "bad gateway"},
		{name: "bad JSON", url: fixed(200, "{not json"), want: []error{ErrBadResponse}},
		{name: "no token", url: fixed(200, `{"token_type":"Bearer"}`), want: []error{ErrBadResponse}},
		{name: "not bearer", url: fixed(200, `{"access_token":"x","token_type":"mac"}`), want: []error{ErrBadResponse}},
		{name: "timeout", url: hang.URL, want: []error{ErrUnavailable, ErrTimeout}},
		{name: "refused", url: "http://127.0.0.1:1/oauth/token", want: []error{ErrUnavailable}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := s.clientCredentials()
			cc.TokenURL, cc.Timeout, cc.HTTPClient = tc.url, 200*time.Millisecond, nil
			if tc.secret != "" {
				cc.ClientSecret = tc.secret
			}
			src, err := cc.TokenSource()
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Token(t.Context())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q is not %v", err, w)
				}
			}
			var he *HTTPError
			if tc.status != 0 {
				if !errors.As(err, &he) || he.Status != tc.status || he.Code != tc.code {
					t.Fatalf("HTTPError = %+v, want status %d code %q", he, tc.status, tc.code)
				}
				if tc.contains != "" && !strings.Contains(err.Error(), tc.contains) {
					t.Fatalf("error %q lacks %q", err, tc.contains)
				}
			}
		})
	}
}

func TestClientCredentialsConfig(t *testing.T) {
	for _, cc := range []ClientCredentials{
		{TokenURL: "", ClientID: "a", ClientSecret: "b"},
		{TokenURL: "ftp://x/token", ClientID: "a", ClientSecret: "b"},
		{TokenURL: "http://x/token", ClientSecret: "b"},
		{TokenURL: "http://x/token", ClientID: "a"},
	} {
		if _, err := cc.TokenSource(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cc, err)
		}
	}
}

func TestParseTokenResponseExpiry(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	tests := []struct {
		body string
		want time.Duration
	}{
		{`{"access_token":"a","expires_in":60}`, time.Minute},
		{`{"access_token":"a","expires_in":1.5}`, 1500 * time.Millisecond},
		{`{"access_token":"a","expires_in":"90"}`, 90 * time.Second},
		{`{"access_token":"a","expires_in":0}`, DefaultTokenTTL},
		{`{"access_token":"a"}`, DefaultTokenTTL},
	}
	for _, tc := range tests {
		_, exp, err := parseTokenResponse([]byte(tc.body), start)
		if err != nil || exp.Sub(start) != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.body, exp.Sub(start), err, tc.want)
		}
	}
}
