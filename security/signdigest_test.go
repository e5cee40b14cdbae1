package security

import (
	"bytes"
	"testing"
)

// signingDigestCorpus: Data frames of the shapes signingDigestData takes and the ones it
// hands to the general path, plus frames that must fail.
var signingDigestCorpus = []string{
	`{"type":"Data","payload":{"jsonrpc":"2.0","id":"1","method":"add","params":{"x":3,"y":4}}}`,
	`{"type":"Data","payload":{"a":1},"pd":"already"}`,
	`{"type":"Data","payload":{"a":1},"pd":""}`,
	`{"type":"Data","pd":null,"payload":{"a":1},"codec":"json"}`,
	`{"type":"Data","payload":{"a":1},"pd":5}`,
	`{"type":"Data"}`, `{"type":"Data","payload":null}`,
	` { "type" : "Data" , "payload" : { "b" : [1, 2.50, "x"] } } `,
	`{"\u0074ype":"Data","payload":{"a":1}}`, `{"type":"D\u0061ta","payload":1}`,
	`{"type":"Data","payload":{"a":1},"type":"Data"}`, `{"type":"Data","payload":1,"payload":2}`,
	`{"type":"Data","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}`,
	`{"type":"Data","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}`,
	`{"type":"Data","payload":{"a":1}}x`, `{"type":"Data","payload":{"a":1}`, `{"type":"Data","payload":{"a":}}`,
	`{"type":1,"payload":{}}`, `{"type":"NodeHeartbeat"}`, `{"type":"SecureOpen","cid":"c","eph_pub":"AA"}`,
	`{"type":"Data","payload":{"n":1e400}}`, `{"type":"Data","payload":"\ud800"}`, `[]`, `{}`, ``,
	`{"type":"Data","é":"x","payload":{}}`, `{"type":"Data","<k>":"&","payload":{}}`,
}

// checkSigningDigest: the one-pass Data path returns exactly what the general path does.
func checkSigningDigest(t *testing.T, frame []byte) {
	t.Helper()
	in := append([]byte(nil), frame...)
	d, out, err := signingDigest(in)
	wd, wout, werr := signingDigestSlow(frame)
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) || d != wd || !bytes.Equal(out, wout) {
		t.Fatalf("%q:\n got %q %s %v\nwant %q %s %v", frame, d, out, err, wd, wout, werr)
	}
	if !bytes.Equal(in, frame) {
		t.Fatalf("%q: input modified to %q", frame, in)
	}
}

func TestSigningDigestDataMatchesGeneral(t *testing.T) {
	for _, f := range signingDigestCorpus {
		checkSigningDigest(t, []byte(f))
	}
}

func FuzzSigningDigestDifferential(f *testing.F) {
	for _, in := range signingDigestCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkSigningDigest(t, in) })
}

// BenchmarkSigningDigest is Sign's work besides the curve: pd computed and added to a request.
func BenchmarkSigningDigest(b *testing.B) {
	frame := []byte(signingDigestCorpus[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := signingDigest(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSigningDigestSlow(b *testing.B) {
	frame := []byte(signingDigestCorpus[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := signingDigestSlow(frame); err != nil {
			b.Fatal(err)
		}
	}
}
