package admit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/security"
)

func TestNewProfiles(t *testing.T) {
	s := newStack(t, stackOpts{})
	base := map[string]string{
		"FAME_ADMISSION_TOKEN_URL": s.oSrv.URL + oauth2.TokenPath, "FAME_ADMISSION_CLIENT_ID": testClient,
		"FAME_ADMISSION_CLIENT_SECRET": testSecret, "FAME_JWT_AUDIENCE": testAudience,
		"FAME_DIRECT_ADMISSION_URL":  "ws://127.0.0.1:8000/fame/v1/attach/ws/downstream",
		"FAME_ADMISSION_SERVICE_URL": `"` + s.wSrv.URL + welcome.HelloPath + `"`, // quoted as in .env.agent
		"FAME_REQUESTED_LOGICALS":    "*.fame.fabric, ",
	}
	env := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return base[k]
		}
	}
	tests := []struct {
		name      string
		over      map[string]string
		wantErr   error
		wantToken bool
		wantURL   string
	}{
		{name: "none", over: map[string]string{"FAME_ADMISSION_PROFILE": "none"}},
		{name: "noop", over: map[string]string{"FAME_ADMISSION_PROFILE": "noop"}},
		{name: "open", over: map[string]string{"FAME_ADMISSION_PROFILE": "open"}, wantURL: base["FAME_DIRECT_ADMISSION_URL"]},
		{name: "open without URL", over: map[string]string{"FAME_ADMISSION_PROFILE": "open", "FAME_DIRECT_ADMISSION_URL": ""}, wantErr: ErrConfig},
		{name: "default is direct", over: map[string]string{}, wantToken: true, wantURL: base["FAME_DIRECT_ADMISSION_URL"]},
		{name: "direct", over: map[string]string{"FAME_ADMISSION_PROFILE": "direct"}, wantToken: true, wantURL: base["FAME_DIRECT_ADMISSION_URL"]},
		{name: "direct http URL", over: map[string]string{"FAME_ADMISSION_PROFILE": "direct", "FAME_DIRECT_ADMISSION_URL": "http://x"}, wantErr: ErrConfig},
		{name: "direct no secret", over: map[string]string{"FAME_ADMISSION_PROFILE": "direct", "FAME_ADMISSION_CLIENT_SECRET": ""}, wantErr: ErrConfig},
		{name: "welcome", over: map[string]string{"FAME_ADMISSION_PROFILE": "welcome"}, wantToken: true, wantURL: testAttach},
		{name: "welcome no service", over: map[string]string{"FAME_ADMISSION_PROFILE": "welcome", "FAME_ADMISSION_SERVICE_URL": ""}, wantErr: ErrConfig},
		{name: "unknown", over: map[string]string{"FAME_ADMISSION_PROFILE": "magic"}, wantErr: ErrConfig},
		{name: "bad CA certs", over: map[string]string{"FAME_CA_CERTS": "/nonexistent/ca.pem"}, wantErr: ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(settingsOf(env(tc.over)), Options{SystemID: "r1node"})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.SystemID != "r1node" || a.InstanceID == "" {
				t.Fatalf("ids: %q %q", a.SystemID, a.InstanceID)
			}
			if (a.Token != nil) != tc.wantToken {
				t.Fatalf("Token set = %v, want %v", a.Token != nil, tc.wantToken)
			}
			if tc.wantURL == "" {
				if _, err := a.AttachURL(t.Context()); !errors.Is(err, ErrConfig) {
					t.Fatalf("AttachURL for %s: %v", a.Profile, err)
				}
				return
			}
			u, err := a.AttachURL(t.Context())
			if err != nil || u != tc.wantURL {
				t.Fatalf("AttachURL = %q, %v; want %q", u, err, tc.wantURL)
			}
			if !tc.wantToken {
				return
			}
			tok, err := a.Token(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if a.Welcome != nil {
				tk := s.verifyTicket(t, tok, "r1node")
				if tk.InstanceID != a.InstanceID || len(tk.AcceptedLogicals) != 1 {
					t.Fatalf("ticket: %+v", tk.Claims)
				}
			} else {
				s.verifyAccess(t, tok)
			}
		})
	}
}

// FAME_CA_CERTS (a file) makes HTTPS to services with certificates from
// that CA work, and is the trust bundle for issued node certificates.
func TestNewCACertsHTTPS(t *testing.T) {
	s := newStack(t, stackOpts{tls: true})
	path := filepath.Join(t.TempDir(), "root-ca.crt")
	if err := os.WriteFile(path, s.authority.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"FAME_ADMISSION_PROFILE": "welcome", "FAME_ADMISSION_SERVICE_URL": s.wSrv.URL + welcome.HelloPath,
		"FAME_ADMISSION_TOKEN_URL": s.oSrv.URL + oauth2.TokenPath, "FAME_ADMISSION_CLIENT_ID": testClient,
		"FAME_ADMISSION_CLIENT_SECRET": testSecret, "FAME_JWT_AUDIENCE": testAudience, "FAME_CA_CERTS": path,
		"FAME_NODE_ID": "r1node",
	}
	a, err := New(settingsOf(func(k string) string { return vars[k] }), Options{Logicals: []string{"*.fame.fabric"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.SystemID != "r1node" || a.Trust == nil {
		t.Fatalf("system %q trust %v", a.SystemID, a.Trust)
	}
	tok, err := a.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.verifyTicket(t, tok, "r1node")
	cs, err := a.CertSource(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cs.Certificate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := security.VerifyNodeCert(c.ChainPEM, s.trust, c.SID, s.clock()); err != nil {
		t.Fatal(err)
	}

	// Without FAME_CA_CERTS the services' certificates are not trusted.
	delete(vars, "FAME_CA_CERTS")
	a, err = New(settingsOf(func(k string) string { return vars[k] }), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("untrusted HTTPS: %v, want ErrUnavailable", err)
	}
	if a.SystemID != "r1node" {
		t.Fatalf("FAME_NODE_ID not used: %q", a.SystemID)
	}
}

// settingsOf maps the reference's variable names onto Settings as config.AdmitSettings does
// (config imports this package, so its tests cannot use it), keeping these cases in the
// terms an operator writes them.
func settingsOf(get func(string) string) Settings {
	var logicals []string
	for _, l := range strings.Split(get("FAME_REQUESTED_LOGICALS"), ",") {
		if l = strings.TrimSpace(l); l != "" {
			logicals = append(logicals, l)
		}
	}
	return Settings{Profile: get("FAME_ADMISSION_PROFILE"), URL: get("FAME_DIRECT_ADMISSION_URL"),
		ServiceURL: get("FAME_ADMISSION_SERVICE_URL"), TokenURL: get("FAME_ADMISSION_TOKEN_URL"),
		ClientID: get("FAME_ADMISSION_CLIENT_ID"), ClientSecret: get("FAME_ADMISSION_CLIENT_SECRET"),
		Audience: get("FAME_JWT_AUDIENCE"), CACerts: get("FAME_CA_CERTS"), NodeID: get("FAME_NODE_ID"), Logicals: logicals}
}
