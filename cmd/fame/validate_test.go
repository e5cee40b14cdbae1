package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fame-go/fame/config"
)

// TestValidate drives `fame validate -c FILE` as an operator would: a misspelt block fails
// with its line and the key it resembles; an extension key is listed and the file passes.
func TestValidate(t *testing.T) {
	env := config.Getenv(func(k string) (string, bool) { return "", false })
	cases := []struct {
		name, file string
		wantErr    string // substring of the error; "" = valid
		wantOut    []string
	}{
		{"misspelt security block", "node:\n  type: Sentinel\n  securityy:\n    type: SecurityProfile\n    profile: strict-overlay\n",
			`line 3: unknown key node.securityy (did you mean "security"?)`, nil},
		{"misspelt admission block", "node:\n  admision: {profile: direct}\n",
			`line 2: unknown key node.admision (did you mean "admission"?)`, nil},
		{"misspelt limit", "node:\n  limits:\n    max_route: 3\n",
			`line 3: unknown key node.limits.max_route (did you mean "max_routes"?)`, nil},
		{"extension listed", "node:\n  type: Sentinel\n  traffic_store: {type: X}\n  security: {profile: overlay}\n", "",
			[]string{"line 3: unknown key node.traffic_store (ignored)", "ok (listen 0.0.0.0:8000, security overlay"}},
		{"bad profile", "node:\n  security: {profile: strictoverlay}\n", `security.profile: "strictoverlay" is not one of`, nil},
		{"gateway listener", "node:\n  listeners:\n    - {type: WebSocketListener, port: 8000}\n    - {type: AgentHttpGatewayListener, allowed_origins: [\"https://app.example\"], limits: {bodyLimitBytes: 4096}}\n", "",
			[]string{"ok (listen 0.0.0.0:8000", ", gateway on)"}},
		{"gateway wildcard origin", "node:\n  listeners:\n    - {type: AgentHttpGatewayListener, allowed_origins: [\"*\"]}\n", "wildcards are not supported", nil},
		{"gateway misspelt key", "node:\n  listeners:\n    - {type: AgentHttpGatewayListener, allowed_origin: []}\n", `did you mean "allowed_origins"`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sentinel.yml")
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := validate(&out, []string{"-c", path}, env)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q (output %q)", err, c.wantErr, out.String())
				}
				if strings.Contains(out.String(), "ok") {
					t.Fatalf("reported ok: %q", out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
	if err := validate(&bytes.Buffer{}, nil, env); err == nil {
		t.Fatal("no -c accepted")
	}
	var uk *config.UnknownKeysError
	path := filepath.Join(t.TempDir(), "s.yml")
	if err := os.WriteFile(path, []byte("node:\n  securityy: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := validate(&bytes.Buffer{}, []string{"-c", path}, env); !errors.As(err, &uk) {
		t.Fatalf("want an *UnknownKeysError, got %v", err)
	}
}

// TestValidateComposeFile: the compose stack's sentinel file stays valid.
func TestValidateComposeFile(t *testing.T) {
	var out bytes.Buffer
	env := config.Getenv(func(k string) (string, bool) { return "", false })
	if err := validate(&out, []string{"-c", "../../compose/config/sentinel.yml"}, env); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "unknown key") {
		t.Fatalf("compose file has unknown keys: %s", out.String())
	}
}

// TestSentinelRefusesMisspeltBlock: `fame sentinel -c FILE` does not start on a file whose
// security block is misspelt (it would otherwise run open).
func TestSentinelRefusesMisspeltBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sentinel.yml")
	if err := os.WriteFile(path, []byte("node:\n  securityy: {profile: strict-overlay}\n  listeners: [{type: WebSocketListener, host: 127.0.0.1, port: 0}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := filepath.Join(t.TempDir(), "addr")
	err := runSentinel(t.Context(), []string{"-c", path, "-addr-file", addr})
	if !errors.Is(err, config.ErrUnknownKey) {
		t.Fatalf("sentinel started or failed otherwise: %v", err)
	}
	if _, statErr := os.Stat(addr); statErr == nil {
		t.Fatal("the sentinel listened")
	}
}
