package oauth2

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fame-go/fame/admission/token"
)

func newServer(t *testing.T, mut func(*Config)) (*httptest.Server, *Server) {
	t.Helper()
	var s *Server
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	cfg := Config{Issuer: srv.URL, Audience: "fame.fabric", Clients: []Client{{"client-a", "s-a"}, {"client-b", "s-b"}}}
	if mut != nil {
		mut(&cfg)
	}
	var err error
	if s, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return srv, s
}

type tokenResp struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
}

func request(t *testing.T, base string, form url.Values, basicID, basicSecret string) (*http.Response, tokenResp) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(basicID, basicSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResp
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("non-JSON body %q", b)
	}
	return resp, tr
}

func TestTokenEndpoint(t *testing.T) {
	srv, _ := newServer(t, nil)
	v, err := token.OAuth2Settings{Issuer: srv.URL, JWKSURL: srv.URL + JWKSPath, Audience: "fame.fabric",
		RequiredScopes: []string{token.ScopeNodeConnect}}.NewJWKSVerifier(token.JWKSOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	form := func(kv ...string) url.Values {
		f := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	cases := []struct {
		name        string
		form        url.Values
		user, pass  string
		status      int
		errCode     string
		wantSubject string
	}{
		{"form credentials", form("grant_type", "client_credentials", "client_id", "client-a", "client_secret", "s-a", "scope", "node.connect"), "", "", 200, "", "client-a"},
		{"basic credentials", form("grant_type", "client_credentials"), "client-b", "s-b", 200, "", "client-b"},
		{"wrong secret", form("grant_type", "client_credentials", "client_id", "client-a", "client_secret", "s-b"), "", "", 401, "invalid_client", ""},
		{"other client's secret via basic", form("grant_type", "client_credentials"), "client-a", "s-b", 401, "invalid_client", ""},
		{"no credentials", form("grant_type", "client_credentials"), "", "", 401, "invalid_client", ""},
		{"unsupported grant", form("grant_type", "password", "client_id", "client-a", "client_secret", "s-a"), "", "", 400, "unsupported_grant_type", ""},
		{"unknown scope", form("grant_type", "client_credentials", "scope", "admin"), "client-a", "s-a", 400, "invalid_scope", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, tr := request(t, srv.URL, tc.form, tc.user, tc.pass)
			if resp.StatusCode != tc.status || tr.Error != tc.errCode {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, tr, tc.status, tc.errCode)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("token response is cacheable")
			}
			if tc.status != 200 {
				return
			}
			if tr.TokenType != "Bearer" || tr.ExpiresIn != 3600 || tr.Scope != "node.connect" {
				t.Fatalf("response = %+v", tr)
			}
			c, err := v.Verify(context.Background(), tr.AccessToken)
			if err != nil {
				t.Fatalf("issued token refused: %v", err)
			}
			if c.Subject != tc.wantSubject || c.ID == "" || c.IssuedAt == nil {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

func TestAudienceFromRequest(t *testing.T) {
	srv, s := newServer(t, nil)
	_, tr := request(t, srv.URL, url.Values{"grant_type": {"client_credentials"}, "audience": {"/Sentinel"}}, "client-a", "s-a")
	v, _ := token.NewVerifier(token.Config{Keys: token.StaticKeys{s.Key().Kid: s.Key().Public()}, Issuer: srv.URL, Audience: "/Sentinel"})
	if _, err := v.Verify(context.Background(), tr.AccessToken); err != nil {
		t.Fatalf("audience from the request not used: %v", err)
	}
}

func TestDiscovery(t *testing.T) {
	srv, _ := newServer(t, nil)
	resp, err := http.Get(srv.URL + DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != srv.URL || d["token_endpoint"] != srv.URL+TokenPath || d["jwks_uri"] != srv.URL+JWKSPath {
		t.Fatalf("discovery = %v", d)
	}
}

func TestPersistedKeySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth2.key")
	cfg := Config{Issuer: "https://oauth2-server", Clients: []Client{{"a", "b"}}, KeyFile: path}
	s1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Key().Kid != s2.Key().Kid {
		t.Fatal("restart changed the signing key")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"FAME_JWT_ISSUER": "https://oauth2-server", "FAME_JWT_CLIENT_ID": "ref", "FAME_JWT_CLIENT_SECRET": "rs",
		"FAME_OAUTH2_CLIENT_ID": "mine", "FAME_OAUTH2_CLIENT_SECRET": "ms", "FAME_OAUTH2_CLIENTS": "x:1,y:2",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Clients) != 4 || c.Clients[3] != (Client{"y", "2"}) || c.Audience != "fame-fabric" || c.Port != "8099" {
		t.Fatalf("config = %+v", c)
	}
	env["FAME_OAUTH2_CLIENTS"] = "nocolon"
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("malformed client list accepted")
	}
	if _, err := New(Config{Issuer: "x"}); err == nil {
		t.Fatal("server without clients accepted")
	}
}
