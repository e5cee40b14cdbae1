package node

import (
	"bytes"
	"encoding/json"
	"testing"
)

// reflectRequest is the request body as json.Marshal builds it: the hand-built fast path
// must match it byte for byte (or fail the same way).
func reflectRequest(id, method string, params json.RawMessage) ([]byte, error) {
	idj, _ := json.Marshal(id)
	return json.Marshal(rpcRequest{JSONRPC: "2.0", ID: idj, Method: method, Params: params})
}

func checkRequestEncoding(t *testing.T, id, method string, params json.RawMessage) {
	t.Helper()
	got, gerr := encodeRequest(id, method, params)
	want, werr := reflectRequest(id, method, params)
	if (gerr != nil) != (werr != nil) {
		t.Fatalf("%q %q %q: error %v, json.Marshal %v", id, method, params, gerr, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%q %q %q:\n got %s\nwant %s", id, method, params, got, want)
	}
}

func TestEncodeRequestMatchesMarshal(t *testing.T) {
	for _, tc := range []struct {
		id, method string
		params     json.RawMessage
	}{
		{"abc123", "add", json.RawMessage(`{"x":1,"y":2}`)},
		{"abc123", "add", json.RawMessage(" { \"x\" : [1, 2] }\n")},
		{"abc123", "a<b>", json.RawMessage(`{}`)},
		{"a\"b", "add", json.RawMessage(`{}`)},
		{"id", "méthode", json.RawMessage(`{}`)},
		{"id", "add", json.RawMessage(`{"s":"<&>"}`)},
		{"id", "add", json.RawMessage(`{"x":`)},
		{"id", "add", json.RawMessage(``)},
		{"id", "add", json.RawMessage(`null`)},
	} {
		checkRequestEncoding(t, tc.id, tc.method, tc.params)
	}
}

func FuzzEncodeRequest(f *testing.F) {
	f.Add("id", "add", []byte(`{"x":1}`))
	f.Add("i\x01d", "a<", []byte(` [1, "\u2028"] `))
	f.Fuzz(func(t *testing.T, id, method string, params []byte) {
		checkRequestEncoding(t, id, method, params)
	})
}

func BenchmarkEncodeRequest(b *testing.B) {
	p := json.RawMessage(`{"x":1,"y":2}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeRequest("0123456789abcdef", "add", p); err != nil {
			b.Fatal(err)
		}
	}
}
