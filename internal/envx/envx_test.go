package envx

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", time.Hour, false},
		{"300", 5 * time.Minute, false},
		{"1.5", 1500 * time.Millisecond, false},
		{"2m", 2 * time.Minute, false},
		{"0", 0, true},
		{"-3", 0, true},
		{"soon", 0, true},
	}
	for _, tc := range cases {
		got, err := Duration(func(string) string { return tc.in }, "X", time.Hour)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("Duration(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestListBoolFirst(t *testing.T) {
	env := map[string]string{"L": "a, b c", "B": "Yes", "F2": "x"}
	get := func(k string) string { return env[k] }
	if l := List(get, "L", nil); len(l) != 3 || l[2] != "c" {
		t.Errorf("List = %q", l)
	}
	if l := List(get, "none", []string{"d"}); len(l) != 1 || l[0] != "d" {
		t.Errorf("List default = %q", l)
	}
	if !Bool(get, "B") || Bool(get, "none") {
		t.Error("Bool wrong")
	}
	if First(get, "def", "F1", "F2") != "x" || First(get, "def", "F1") != "def" {
		t.Error("First wrong")
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{
		"1": true, "true": true, "TRUE": true, " yes ": true, "On": true, "enabled": true,
		"0": false, "false": false, "No": false, "off": false, "DISABLED": false,
	} {
		if v, ok := ParseBool(in); !ok || v != want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, true", in, v, ok, want)
		}
	}
	for _, in := range []string{"", " ", "y", "t", "2", "truee", "nope"} {
		if v, ok := ParseBool(in); ok || v {
			t.Errorf("ParseBool(%q) = %v, %v; want false, false", in, v, ok)
		}
	}
	get := func(k string) string { return map[string]string{"X": "bogus", "Y": "enabled"}[k] }
	if Bool(get, "X") || !Bool(get, "Y") {
		t.Error("Bool: unrecognised must be false, enabled true")
	}
}
