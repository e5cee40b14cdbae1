package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// testDoc mirrors the sentinel file's shape: a strict top level, an extensible node block
// (inline map), strict nested blocks.
type testDoc struct {
	Node struct {
		ID       string `yaml:"id,omitempty"`
		Security struct {
			Type    string `yaml:"type"`
			Profile string `yaml:"profile"`
		} `yaml:"security"`
		Admission struct {
			Profile string `yaml:"profile"`
		} `yaml:"admission"`
		Listeners []struct {
			Type string `yaml:"type"`
			Port int    `yaml:"port"`
		} `yaml:"listeners"`
		Limits struct {
			MaxRoutes int `yaml:"max_routes"`
			MaxKeys   int `yaml:"max_keys"`
		} `yaml:"limits"`
		Telemetry map[string]any `yaml:"telemetry"`
		Extra     map[string]any `yaml:",inline"`
	} `yaml:"node"`
	Logging struct {
		Level string `yaml:"level"`
	} `yaml:"logging"`
}

func TestCheckKeys(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []UnknownKey
	}{
		{"clean", "node:\n  id: a\n  security: {type: SecurityProfile, profile: overlay}\n", nil},
		{"misspelt security block", "node:\n  id: a\n  securityy:\n    profile: strict-overlay\n",
			[]UnknownKey{{Path: "node.securityy", Line: 3, Near: "security", Strict: false}}},
		{"short keys are no near miss of id", "node:\n  ip: 10.0.0.1\n  ids: [a]\n",
			[]UnknownKey{{Path: "node.ip", Line: 2}, {Path: "node.ids", Line: 3}}},
		{"capitalised", "node:\n  Security: {profile: overlay}\n",
			[]UnknownKey{{Path: "node.Security", Line: 2, Near: "security"}}},
		{"dropped letter", "node:\n  admision: {profile: direct}\n",
			[]UnknownKey{{Path: "node.admision", Line: 2, Near: "admission"}}},
		{"two edits", "node:\n  secruity: {profile: overlay}\n",
			[]UnknownKey{{Path: "node.secruity", Line: 2, Near: "security"}}},
		{"far: an extension, ignored", "node:\n  traffic_store: {}\n",
			[]UnknownKey{{Path: "node.traffic_store", Line: 2}}},
		{"short key not a near miss of id", "node:\n  os: linux\n",
			[]UnknownKey{{Path: "node.os", Line: 2}}},
		{"nested strict block", "node:\n  limits:\n    max_route: 3\n",
			[]UnknownKey{{Path: "node.limits.max_route", Line: 3, Near: "max_routes", Strict: true}}},
		{"nested strict block, far", "node:\n  limits:\n    colour: red\n",
			[]UnknownKey{{Path: "node.limits.colour", Line: 3, Strict: true}}},
		{"in a list", "node:\n  listeners:\n    - type: HttpListener\n      prot: 80\n",
			[]UnknownKey{{Path: "node.listeners[0].prot", Line: 4, Near: "port", Strict: true}}},
		{"free-form block", "node:\n  telemetry: {securityy: 1, anything: {x: 2}}\n", nil},
		{"top level", "nodes:\n  id: a\n", []UnknownKey{{Path: "nodes", Line: 1, Near: "node", Strict: true}}},
		{"merge key", "base: &b {level: info}\nlogging:\n  <<: *b\n",
			[]UnknownKey{{Path: "base", Line: 1, Strict: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var root yaml.Node
			if err := yaml.Unmarshal([]byte(c.doc), &root); err != nil {
				t.Fatal(err)
			}
			got := CheckKeys(&root, reflect.TypeFor[testDoc]())
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDecodeReportMisspeltBlock(t *testing.T) {
	var d testDoc
	ignored, err := DecodeReport([]byte("node:\n  id: a\n  securityy: {profile: strict-overlay}\n  extension: 1\n"), mapEnv(nil), &d)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a misspelt security block was accepted: %v", err)
	}
	var uk *UnknownKeysError
	if !errors.As(err, &uk) || len(uk.Keys) != 1 || !strings.Contains(err.Error(), `line 3: unknown key node.securityy (did you mean "security"?)`) {
		t.Fatalf("error does not name the key, line and suggestion: %v", err)
	}
	if len(ignored) != 1 || ignored[0].Path != "node.extension" {
		t.Fatalf("ignored %+v", ignored)
	}

	ignored, err = DecodeReport([]byte("node:\n  id: a\n  extension: 1\n"), mapEnv(nil), &d)
	if err != nil || len(ignored) != 1 || ignored[0].String() != "line 3: unknown key node.extension (ignored)" {
		t.Fatalf("extension: %v %+v", err, ignored)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"security", "securityy", 1}, {"security", "secruity", 2}, {"kitten", "sitting", 3}, {"max_keys", "max_routes", 5}} {
		if got := levenshtein(c.a, c.b); got != c.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, v := range []string{"1", "true", "TRUE", " yes ", "on", "Enabled"} {
		if b, ok := ParseBool(v); !b || !ok {
			t.Errorf("%q: %v %v", v, b, ok)
		}
	}
	for _, v := range []string{"0", "false", "No", "off", "disabled"} {
		if b, ok := ParseBool(v); b || !ok {
			t.Errorf("%q: %v %v", v, b, ok)
		}
	}
	for _, v := range []string{"", "maybe", "2", "tru"} {
		if _, ok := ParseBool(v); ok {
			t.Errorf("%q accepted", v)
		}
	}
}
