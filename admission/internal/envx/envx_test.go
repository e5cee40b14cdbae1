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
