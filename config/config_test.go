package config

import (
	"errors"
	"testing"
)

func mapEnv(m map[string]string) Getenv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSubstitute(t *testing.T) {
	env := mapEnv(map[string]string{"A": "1", "EMPTY": ""})
	cases := []struct {
		in, want string
		err      error
	}{
		{"plain", "plain", nil},
		{"${env:A}", "1", nil},
		{"${env:A:9}", "1", nil},
		{"${env:B:9}", "9", nil},
		{"${env:B:}", "", nil},
		{"${env:EMPTY:x}", "", nil},
		{"ws://${env:B:host}:${env:A}/x", "ws://host:1/x", nil},
		{"${env:B:http://a:b}", "http://a:b", nil},
		{"${env:B}", "", ErrMissingEnv},
	}
	for _, c := range cases {
		got, err := Substitute(c.in, env)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%q: err %v", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Substitute(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := Substitute("${env:A", env); err == nil {
		t.Error("unterminated reference accepted")
	}
}

func TestDecode(t *testing.T) {
	type listener struct {
		Type string `yaml:"type"`
		Port int    `yaml:"port"`
	}
	type doc struct {
		Node struct {
			ID        string     `yaml:"id"`
			Listeners []listener `yaml:"listeners"`
		} `yaml:"node"`
	}
	in := "node:\n  id: \"${env:FAME_NODE_ID:}\"\n  listeners:\n    - type: WebSocketListener\n      port: \"${env:PORT:8000}\"\n"
	var d doc
	if err := Decode([]byte(in), mapEnv(map[string]string{"PORT": "9001"}), &d); err != nil {
		t.Fatal(err)
	}
	if d.Node.ID != "" || len(d.Node.Listeners) != 1 || d.Node.Listeners[0].Port != 9001 {
		t.Fatalf("%+v", d)
	}
	var d2 doc
	if err := Decode([]byte("node:\n  idd: x\n"), mapEnv(nil), &d2); err == nil {
		t.Fatal("unknown key accepted")
	}
}
