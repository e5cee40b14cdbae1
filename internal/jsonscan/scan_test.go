package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// valid reports whether b is exactly one JSON value (whitespace around it allowed) by this
// scanner, with encoding/json's own nesting limit.
func valid(b []byte) bool {
	i := SkipWS(b, 0)
	end, err := SkipValue(b, i, 0, 10000)
	return err == nil && SkipWS(b, end) == len(b)
}

var cases = []string{
	`0`, `-0`, `-0.5e+10`, `1E9`, `12.25`, `01`, `-`, `1.`, `1e`, `.5`, `+1`, `1e+`,
	`true`, `false`, `null`, `tru`, `nul`, `TRUE`,
	`""`, `"a\"b"`, `"\u00e9\uD83D\uDE00"`, `"\u12"`, `"\u12G4"`, `"\x"`, "\"\x01\"", `"abc`, "\"\xff\xfe\"", "\"\x7f\"",
	`{}`, `[]`, `{"a":1,"b":[1,2,{"c":null}]}`, `{"a" : 1 , "b" : 2 }`, `{"a":1,}`, `[1,]`, `{"a"}`, `{1:2}`, `[1 2]`,
	` [ ] `, "\t{\n}\r", `{"a":1}x`, `[`, `{`, `{"a":`, `["a",`,
}

// TestMatchesEncodingJSON: on well-formed and broken documents alike the scanner accepts
// exactly what encoding/json does.
func TestMatchesEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("%q: scanner %v, encoding/json %v", c, got, want)
		}
	}
}

func TestScanStringEscapedFlag(t *testing.T) {
	for in, want := range map[string]bool{`"plain"`: false, `"a\nb"`: true, `"\u0041"`: true, "\"caf\xc3\xa9\"": false} {
		end, esc, err := ScanString([]byte(in+"rest"), 0)
		if err != nil || end != len(in) || esc != want {
			t.Errorf("%s: end %d escaped %v err %v", in, end, esc, err)
		}
	}
}

func TestErrors(t *testing.T) {
	_, err := SkipValue([]byte(`{"a":tru}`), 0, 0, 64)
	var e *Error
	if !errors.As(err, &e) || e.TooDeep() || e.Offset != 5 || e.What != "bad literal" {
		t.Fatalf("err %#v", err)
	}
	deep := []byte(strings.Repeat("[", 5) + strings.Repeat("]", 5))
	if _, err := SkipValue(deep, 0, 0, 5); err != nil {
		t.Fatalf("depth 5 at limit 5: %v", err)
	}
	_, err = SkipValue(deep, 0, 0, 4)
	if !errors.As(err, &e) || !e.TooDeep() || e.Limit != 4 || e.Offset != 4 {
		t.Fatalf("depth 5 at limit 4: %#v", err)
	}
	// A depth the caller has already used up counts: a value inside a container at depth 3.
	if _, err := SkipValue([]byte(`[[]]`), 0, 3, 4); err == nil {
		t.Fatal("nesting beyond the limit accepted")
	}
}

// FuzzScanner: the merged scanner accepts exactly what encoding/json accepts (encoding/json's
// nesting limit being 10000, the same as the one given here).
func FuzzScanner(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := valid(b), json.Valid(b); got != want {
			t.Fatalf("%q: scanner %v, encoding/json %v", b, got, want)
		}
	})
}
