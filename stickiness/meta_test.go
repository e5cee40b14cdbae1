package stickiness

import (
	"encoding/json"
	"testing"
)

func TestExtractAFT(t *testing.T) {
	tests := []struct {
		meta string
		want string
		ok   bool
	}{
		{`{"set":{"aft":"a.b.c"}}`, "a.b.c", true},
		{`{"set.aft":"x.y."}`, "x.y.", true},
		{`{"set":{"aft":"nested"},"set.aft":"flat"}`, "nested", true},
		{`{"set":{"other":1},"set.aft":"flat"}`, "flat", true},
		{`{"set":"notanobject","set.aft":"flat"}`, "flat", true},
		{`{"set":{"aft":5}}`, "", false},
		{`{"set":{"aft":null}}`, "", false},
		{`{"set":{"aft":""}}`, "", false},
		{`{"set":{"aft":"a\u002eb"}}`, "a.b", true},
		{`{}`, "", false},
		{`null`, "", false},
		{`[]`, "", false},
		{`"set.aft"`, "", false},
		{`{"set":{"aft":"x"`, "", false},
		{``, "", false},
	}
	for _, tc := range tests {
		got, ok := ExtractAFT(json.RawMessage(tc.meta))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ExtractAFT(%s) = %q, %v; want %q, %v", tc.meta, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzExtractAFT(f *testing.F) {
	for _, s := range []string{`{"set":{"aft":"a.b.c"}}`, `{"set.aft":"x"}`, `{"set":[1,2]}`, `null`, `{"set":{"aft":"\ud800"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, meta []byte) {
		tok, ok := ExtractAFT(meta)
		if ok != (tok != "") {
			t.Fatalf("ok=%v with token %q", ok, tok)
		}
		if ok && !json.Valid(meta) {
			t.Fatalf("token %q extracted from invalid JSON", tok)
		}
	})
}
