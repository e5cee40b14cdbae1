package config

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDecodeAllValidateEveryProblem: DecodeAll reports the fatal unknown keys and still decodes
// the rest, so that a mistyped value elsewhere is reported in the same pass and good values
// are read; Decode stops at the unknown keys.
func TestDecodeAllValidateEveryProblem(t *testing.T) {
	doc := "node:\n  id: a\n  securityy: {profile: open}\n  limits:\n    max_route: 3\n    max_keys: lots\n  admission: {profile: direct}\nlogging: {level: debug}\n"
	var d testDoc
	ignored, unknown, err := DecodeAll([]byte(doc), MapEnv(nil), &d)
	if unknown == nil || len(unknown.Keys) != 2 || unknown.Keys[0].Path != "node.securityy" || unknown.Keys[1].Path != "node.limits.max_route" {
		t.Fatalf("unknown = %v", unknown)
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) != 1 || !strings.Contains(te.Errors[0], "lots") {
		t.Fatalf("err = %v, want the one type error", err)
	}
	if len(ignored) != 0 {
		t.Fatalf("ignored %v", ignored)
	}
	if d.Node.ID != "a" || d.Node.Admission.Profile != "direct" || d.Logging.Level != "debug" {
		t.Fatalf("the good values were not decoded: %+v", d)
	}
	if err := Decode([]byte(doc), MapEnv(nil), &testDoc{}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Decode: %v", err)
	}
	// A clean document: nothing reported.
	if ig, uk, err := DecodeAll([]byte("node:\n  id: b\n  extension: {x: 1}\n"), MapEnv(nil), &testDoc{}); err != nil || uk != nil || len(ig) != 1 {
		t.Fatalf("clean: %v %v %v", ig, uk, err)
	}
}
