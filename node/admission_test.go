package node

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/coder/websocket"
)

func TestResolveAdmission(t *testing.T) {
	const ws = "ws://127.0.0.1:1/fame/v1/attach/ws/downstream"
	welcome := map[string]string{
		"FAME_ADMISSION_PROFILE":       "welcome",
		"FAME_ADMISSION_SERVICE_URL":   "http://127.0.0.1:1/fame/v1/welcome/hello",
		"FAME_ADMISSION_TOKEN_URL":     "http://127.0.0.1:1/oauth/token",
		"FAME_ADMISSION_CLIENT_ID":     "id",
		"FAME_ADMISSION_CLIENT_SECRET": "secret",
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name        string
		cfg         Config
		env         map[string]string
		wantErr     bool
		wantProfile string
		wantToken   bool
		wantDynURL  bool
	}{
		{name: "no env: plain config", cfg: Config{URL: ws}, wantProfile: ""},
		{name: "direct without token URL means none", cfg: Config{URL: ws},
			env: map[string]string{"FAME_ADMISSION_PROFILE": "direct"}, wantProfile: "none"},
		{name: "unset profile without token URL means none", cfg: Config{URL: ws}, env: map[string]string{}, wantProfile: "none"},
		{name: "direct with token URL", cfg: Config{URL: ws},
			env: with(welcome, "FAME_ADMISSION_PROFILE", "direct"), wantProfile: "direct", wantToken: true},
		{name: "open keeps the static URL", cfg: Config{URL: ws},
			env: map[string]string{"FAME_ADMISSION_PROFILE": "open"}, wantProfile: "open"},
		{name: "welcome needs no static URL", cfg: Config{}, env: welcome, wantProfile: "welcome", wantToken: true, wantDynURL: true},
		{name: "config profile overrides env", cfg: Config{URL: ws, AdmissionProfile: "open"}, env: welcome, wantProfile: "open"},
		{name: "quoted env profile", cfg: Config{}, env: with(welcome, "FAME_ADMISSION_PROFILE", `"welcome"`),
			wantProfile: "welcome", wantToken: true, wantDynURL: true},
		{name: "welcome without service URL", cfg: Config{}, env: with(welcome, "FAME_ADMISSION_SERVICE_URL", ""), wantErr: true},
		{name: "unknown profile", cfg: Config{URL: ws}, env: map[string]string{"FAME_ADMISSION_PROFILE": "magic"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			if tc.env != nil {
				env := tc.env
				c.AdmissionSettings = admitSettingsOf(env)
			}
			err := c.validate()
			if err == nil {
				err = c.resolveAdmission()
			}
			if tc.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			profile := ""
			if c.Admission != nil {
				profile = c.Admission.Profile
			}
			if profile != tc.wantProfile {
				t.Errorf("profile %q, want %q", profile, tc.wantProfile)
			}
			if (c.Token != nil) != tc.wantToken {
				t.Errorf("token source set = %v, want %v", c.Token != nil, tc.wantToken)
			}
			if (c.AttachURL != nil) != tc.wantDynURL {
				t.Errorf("dynamic attach URL = %v, want %v", c.AttachURL != nil, tc.wantDynURL)
			}
			if c.Admission != nil && (c.SystemID != c.Admission.SystemID || c.InstanceID != c.Admission.InstanceID || c.HTTPClient == nil) {
				t.Errorf("ids/client not taken from the admission: %q/%q %q/%q", c.SystemID, c.Admission.SystemID, c.InstanceID, c.Admission.InstanceID)
			}
		})
	}
}

func TestResolveAdmissionKeepsSystemID(t *testing.T) {
	env := map[string]string{"FAME_ADMISSION_PROFILE": "open", "FAME_NODE_ID": "fromenv"}
	c := Config{URL: "ws://h/x", SystemID: "mine", AdmissionSettings: admitSettingsOf(env)}
	if err := c.resolveAdmission(); err != nil {
		t.Fatal(err)
	}
	if c.SystemID != "mine" || c.Admission.SystemID != "mine" {
		t.Fatalf("system id %q (admission %q), want the configured one", c.SystemID, c.Admission.SystemID)
	}
}

func TestAuthRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&AttachError{CloseCode: -1, Reason: "attach ticket: expired", Refused: true}, true},
		{fmt.Errorf("wrapped: %w", &AttachError{CloseCode: websocket.StatusPolicyViolation, Reason: "Authentication failed"}), true},
		{&AttachError{CloseCode: -1, Reason: "connector closed: EOF"}, false},
		{&AttachError{CloseCode: websocket.StatusGoingAway}, false},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := authRefused(tc.err); got != tc.want {
			t.Errorf("authRefused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestAttachURLMustBeWebSocket(t *testing.T) {
	n := &Node{cfg: Config{AttachURL: func(context.Context) (string, error) { return "http://h/x", nil }}}
	if _, err := n.attachURL(context.Background()); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	n.cfg.AttachURL = func(context.Context) (string, error) { return "", errors.New("welcome down") }
	if _, err := n.attachURL(context.Background()); err == nil {
		t.Fatal("want the source's error")
	}
}
