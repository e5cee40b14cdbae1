package sentinel

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/security"
)

func loadGatewayFile(t *testing.T, listeners string, env map[string]string) (Options, error) {
	t.Helper()
	path := t.TempDir() + "/s.yml"
	file := "node:\n  listeners:\n" + listeners
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadOptions(path, config.MapEnv(env))
}

// TestGatewayListenerConfig: the gateway's YAML is the reference's listener entry (type
// AgentHttpGatewayListener; on unless enabled: false; limits.bodyLimitBytes in the reference's
// spelling or ours) plus allowed_origins; FAME_GATEWAY* win over it.
func TestGatewayListenerConfig(t *testing.T) {
	ws := "    - {type: WebSocketListener, host: 127.0.0.1, port: 9001}\n"
	cases := []struct {
		name      string
		listeners string
		env       map[string]string
		want      GatewayOptions
	}{
		{"no entry", ws, nil, GatewayOptions{}},
		{"entry alone", ws + "    - {type: AgentHttpGatewayListener}\n", nil, GatewayOptions{Enabled: true}},
		{"reference spelling", ws + "    - {type: AgentHttpGatewayListener, port: 9001, limits: {bodyLimitBytes: 128}}\n", nil,
			GatewayOptions{Enabled: true, BodyLimit: 128}},
		{"our spelling, origins", ws + "    - {type: AgentHttpGatewayListener, allowed_origins: [\"https://app.example\"], limits: {body_limit_bytes: 64}}\n", nil,
			GatewayOptions{Enabled: true, AllowedOrigins: []string{"https://app.example"}, BodyLimit: 64}},
		{"disabled entry", ws + "    - {type: AgentHttpGatewayListener, enabled: false}\n", nil, GatewayOptions{}},
		{"env turns it on", ws, map[string]string{"FAME_GATEWAY": "on", "FAME_GATEWAY_BODY_LIMIT": "4096"},
			GatewayOptions{Enabled: true, BodyLimit: 4096}},
		{"env turns it off", ws + "    - {type: AgentHttpGatewayListener}\n", map[string]string{"FAME_GATEWAY": "off"}, GatewayOptions{}},
		{"welcome URL key", ws + "    - {type: AgentHttpGatewayListener, welcome_url: \"https://w:8090/hello\"}\n", nil,
			GatewayOptions{Enabled: true, WelcomeURL: "https://w:8090/hello"}},
		{"the admission's welcome URL", ws + "    - {type: AgentHttpGatewayListener, welcome_url: \"https://w:8090/hello\"}\n",
			map[string]string{"FAME_ADMISSION_SERVICE_URL": "https://a/hello"}, GatewayOptions{Enabled: true, WelcomeURL: "https://a/hello"}},
		{"the gateway's welcome URL first", ws, map[string]string{"FAME_GATEWAY": "on", "FAME_ADMISSION_SERVICE_URL": "https://a/hello",
			"FAME_GATEWAY_WELCOME_URL": "https://g/hello"}, GatewayOptions{Enabled: true, WelcomeURL: "https://g/hello"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := loadGatewayFile(t, tc.listeners, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Gateway, tc.want) {
				t.Fatalf("gateway %+v, want %+v", o.Gateway, tc.want)
			}
			if o.Port != 9001 {
				t.Fatalf("port %d: the gateway entry changed the sentinel's", o.Port)
			}
		})
	}
}

// TestGatewayConfigRefused: every wrong gateway setting is refused at load (so by fame
// validate, the start and a reload), named.
func TestGatewayConfigRefused(t *testing.T) {
	ws := "    - {type: WebSocketListener, port: 9001}\n"
	cases := []struct {
		name      string
		listeners string
		env       map[string]string
		want      string
	}{
		{"wildcard origin", ws + "    - {type: AgentHttpGatewayListener, allowed_origins: [\"*\"]}\n", nil, "wildcards are not supported"},
		{"origin with a path", ws + "    - {type: AgentHttpGatewayListener, allowed_origins: [\"https://a.example/app\"]}\n", nil, "is not an origin"},
		{"origin without scheme", ws, map[string]string{"FAME_GATEWAY": "on", "FAME_GATEWAY_ALLOWED_ORIGINS": "a.example"}, "is not an origin"},
		{"negative body limit", ws + "    - {type: AgentHttpGatewayListener, limits: {body_limit_bytes: -1}}\n", nil, "is negative"},
		{"bad env body limit", ws, map[string]string{"FAME_GATEWAY": "on", "FAME_GATEWAY_BODY_LIMIT": "lots"}, "FAME_GATEWAY_BODY_LIMIT"},
		{"bad env switch", ws, map[string]string{"FAME_GATEWAY": "maybe"}, "FAME_GATEWAY"},
		{"spellings disagree", ws + "    - {type: AgentHttpGatewayListener, limits: {body_limit_bytes: 1, bodyLimitBytes: 2}}\n", nil, "disagree"},
		{"a port of its own", ws + "    - {type: AgentHttpGatewayListener, port: 9002}\n", nil, "port 9002 is not supported"},
		{"a host of its own", ws + "    - {type: AgentHttpGatewayListener, host: 10.1.2.3}\n", nil, "host \"10.1.2.3\" is not supported"},
		{"gateway keys on another listener", "    - {type: WebSocketListener, port: 9001, allowed_origins: [\"https://a.example\"]}\n", nil, "belong to a AgentHttpGatewayListener entry"},
		{"misspelt key", ws + "    - {type: AgentHttpGatewayListener, allowed_origin: [\"https://a.example\"]}\n", nil, "allowed_origins"},
		{"unknown limit", ws + "    - {type: AgentHttpGatewayListener, limits: {maxMethodLength: 9}}\n", nil, "maxMethodLength"},
		{"strict-overlay without welcome", ws, map[string]string{"FAME_GATEWAY": "on", "FAME_SECURITY_PROFILE": "strict-overlay"}, "needs welcome admission"},
		{"strict-overlay without a welcome URL", ws, map[string]string{"FAME_GATEWAY": "on", "FAME_SECURITY_PROFILE": "strict-overlay", "FAME_ADMISSION_PROFILE": "welcome"}, "needs the welcome hello URL"},
		{"welcome URL not http", ws, map[string]string{"FAME_GATEWAY": "on", "FAME_GATEWAY_WELCOME_URL": "ftp://welcome/hello"}, "is not an http(s) URL"},
		{"welcome URL on another listener", "    - {type: WebSocketListener, port: 9001, welcome_url: \"https://w/hello\"}\n", nil, "belong to a AgentHttpGatewayListener entry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			listeners := tc.listeners
			if tc.env["FAME_SECURITY_PROFILE"] != "" {
				listeners += "  security: {profile: \"${env:FAME_SECURITY_PROFILE}\"}\n"
			}
			if tc.env["FAME_ADMISSION_PROFILE"] != "" {
				listeners += "  admission: {profile: \"${env:FAME_ADMISSION_PROFILE}\"}\n"
			}
			_, err := loadGatewayFile(t, listeners, tc.env)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a config error naming %q", err, tc.want)
			}
		})
	}
}

// TestGatewayKeysNeedRestart: a reload that changes a gateway setting is refused, naming it.
func TestGatewayKeysNeedRestart(t *testing.T) {
	s, _, _ := reloadSentinel(t, map[string]string{"FAME_GATEWAY": "on"})
	next := s.reload.live
	next.Gateway.AllowedOrigins = []string{"https://new.example"}
	next.Gateway.BodyLimit = 10
	keys := s.RestartKeys(next)
	for _, k := range []string{"node.listeners[AgentHttpGatewayListener].allowed_origins", "node.listeners[AgentHttpGatewayListener].limits.body_limit_bytes"} {
		if !slices.Contains(keys, k) {
			t.Fatalf("restart keys %v lack %s", keys, k)
		}
	}
	next = s.reload.live
	next.Gateway.Enabled = false
	_, err := s.Reload(next)
	var rr *RestartRequiredError
	if !errors.As(err, &rr) || !slices.Contains(rr.Keys, "node.listeners[AgentHttpGatewayListener] (FAME_GATEWAY)") {
		t.Fatalf("reload turning the gateway off: %v", err)
	}
}

// TestGatewayStrictOverlayAccepted: under strict-overlay the gateway is valid exactly with
// welcome admission and a welcome URL (each caller is admitted and certified there).
func TestGatewayStrictOverlayAccepted(t *testing.T) {
	g := GatewayOptions{Enabled: true, WelcomeURL: "https://welcome:8090/fame/v1/welcome/hello"}
	if p := g.validate(security.ProfileStrictOverlay, AdmissionWelcome); len(p) != 0 {
		t.Fatalf("strict-overlay, welcome, URL: %v", p)
	}
	for _, adm := range []AdmissionProfile{AdmissionDirect, AdmissionOpen, AdmissionNone} {
		if p := g.validate(security.ProfileStrictOverlay, adm); len(p) != 1 || !strings.Contains(p[0], "needs welcome admission") {
			t.Fatalf("strict-overlay, %s: %v", adm, p)
		}
	}
	if p := g.validate(security.ProfileOverlay, AdmissionDirect); len(p) != 0 {
		t.Fatalf("overlay, direct: %v", p)
	}
}
