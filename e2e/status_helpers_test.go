package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// statusHTTP is a bare HTTP client for the status page: no cookie jar and no redirects
// followed, so each test states exactly which credentials it sends and sees every answer.
var statusHTTP = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// statusGet fetches path with the given Authorization header and cookie (either may be empty).
func statusGet(t *testing.T, f *fabric, path, auth string, ck *http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+f.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ck != nil {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	return statusDo(t, req)
}

// statusLogin posts the login form with tok.
func statusLogin(t *testing.T, f *fabric, tok string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+f.addr+"/admin/login",
		strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return statusDo(t, req)
}

func statusDo(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := statusHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// sessionCookie returns the status page's session cookie from a login answer.
func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "fame_admin" {
			return c
		}
	}
	t.Fatalf("no session cookie in %d %v", resp.StatusCode, resp.Header)
	return nil
}
