package envelope

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The Data fast path must give exactly the bytes of the reflective encoder (signatures and
// golden files depend on them), or the same error.
func checkDataEncoding(t *testing.T, d *Data) {
	t.Helper()
	got, gerr := EncodeFrame(d)
	want, werr := encodeFrameReflect(d)
	if (gerr != nil) != (werr != nil) {
		t.Fatalf("payload %q: error %v, reflective path %v", d.Payload, gerr, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("payload %q:\n got %s\nwant %s", d.Payload, got, want)
	}
}

func TestEncodeDataMatchesReflect(t *testing.T) {
	for _, d := range []*Data{
		{},
		{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"x","method":"add","params":{"x":1,"y":2}}`)},
		{Payload: json.RawMessage(" {\n \"a\" : [1, 2,\t3] } ")},
		{Payload: json.RawMessage(`null`)},
		{Payload: json.RawMessage(`"<b>&amp;</b>"`)},
		{Payload: json.RawMessage("\"\u2028\"")},
		{Payload: json.RawMessage(`{"a":`)},
		{Payload: json.RawMessage(` `)},
		{Payload: json.RawMessage(`{"x":1}`), Codec: "json"},
		{Payload: json.RawMessage(`"c2VhbGVk"`), CID: "ch-1", Nonce: "bm9uY2U", PD: "pd"},
	} {
		checkDataEncoding(t, d)
	}
}

func FuzzEncodeData(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(` [ "<", 1.5e3 ] `))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, p []byte) {
		checkDataEncoding(t, &Data{Payload: p})
	})
}

func BenchmarkEncodeData(b *testing.B) {
	d := &Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"0123456789abcdef","method":"add","params":{"x":1,"y":2}}`)}
	for _, bc := range []struct {
		name string
		enc  func(Frame) (json.RawMessage, error)
	}{{"fast", EncodeFrame}, {"reflect", encodeFrameReflect}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.enc(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
