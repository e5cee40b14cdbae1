package envelope

import (
	"encoding/json"
	"reflect"
	"testing"
)

// checkDataParse: whenever the fast path accepts a frame it must give what json.Unmarshal
// gives, and ParseFrame must agree with the reflective decoder on every input.
func checkDataParse(t *testing.T, raw []byte) (fast bool) {
	t.Helper()
	var want Data
	werr := json.Unmarshal(raw, &want)
	got, ok := parseData(raw)
	if ok {
		if werr != nil {
			t.Fatalf("%q: fast path accepted what json.Unmarshal rejects (%v)", raw, werr)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", raw, *got, want)
		}
	}
	if f, err := ParseFrame(raw); err == nil {
		if d, isData := f.(*Data); isData && (werr != nil || !reflect.DeepEqual(*d, want)) {
			t.Fatalf("%q: ParseFrame = %+v, json.Unmarshal = %+v (%v)", raw, *d, want, werr)
		}
	}
	return ok
}

func TestParseDataMatchesReflect(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		fast bool
	}{
		{`{"type":"Data","payload":{"jsonrpc":"2.0","id":"x","result":7}}`, true},
		{`{"type":"Data"}`, true},
		{`{ "payload" : [1, 2] , "type" : "Data" } `, true},
		{`{"type":"Data","payload":"c2VhbGVk","cid":"ch-1","nonce":"bm9uY2U","pd":"pd","fid":"f","codec":"json"}`, true},
		{`{"type":"Data","codec":"a\u00e9\n"}`, true},
		{`{"type":"Data","payload":1,"payload":2}`, true},
		{`{"type":"Data","payload":null}`, false},
		{`{"type":"Data","Payload":{"a":1}}`, false},
		{`{"type":"Data","codec":null}`, false},
		{`{"type":"Data","codec":5}`, false},
		{"{\"type\":\"Data\",\"codec\":\"\xff\"}", false},
		{`{"type":"Data","extra":true}`, false},
		{`{"type":"Data","p\u0061yload":1}`, false},
		{`{"type":"Data","payload":{"a":}`, false},
		{`{"type":"Data"} x`, false},
	} {
		if got := checkDataParse(t, []byte(tt.raw)); got != tt.fast {
			t.Errorf("%s: fast path taken = %v, want %v", tt.raw, got, tt.fast)
		}
	}
}

func FuzzParseData(f *testing.F) {
	f.Add([]byte(`{"type":"Data","payload":{"jsonrpc":"2.0","id":"x","result":7}}`))
	f.Add([]byte(`{"type":"Data","codec":"a\u00e9","cid":"x"}`))
	f.Add([]byte(`{"type":"Data","payload":null,"PD":"x"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkDataParse(t, raw)
	})
}

func BenchmarkParseData(b *testing.B) {
	raw := []byte(`{"type":"Data","payload":{"jsonrpc":"2.0","id":"0123456789abcdef","result":7}}`)
	for _, bc := range []struct {
		name  string
		parse func([]byte) error
	}{
		{"fast", func(r []byte) error { _, err := ParseFrame(r); return err }},
		{"reflect", func(r []byte) error { var d Data; return json.Unmarshal(r, &d) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
