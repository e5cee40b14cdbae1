package security

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// diffOpts are every encoder configuration the package uses.
var diffOpts = []struct {
	name string
	opts *encodeOpts
}{
	{"canonical", &canonicalOpts},
	{"js", &jsCanonicalOpts},
	{"frame", &frameDigestOpts},
	{"pyDefault", &pyDefaultOpts},
	{"pyCompact", &pyCompactOpts},
}

// checkAgainstOracle asserts that the single-pass encoder and the old encoding/json-based one
// agree on in: both fail, or both succeed with identical bytes.
func checkAgainstOracle(t *testing.T, in []byte) {
	t.Helper()
	for _, o := range diffOpts {
		want, werr := oracleCanonical(in, o.opts)
		got, gerr := appendEncoded(nil, in, o.opts)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s: %q: oracle err %v, new err %v", o.name, in, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s: %q:\nnew    %q\noracle %q", o.name, in, got, want)
		}
	}
	if frameIsModelForm(in) {
		if out, changed, err := normalizeFrameSlow(in); err != nil || changed || !bytes.Equal(out, in) {
			t.Fatalf("%q: fast path says model form, slow path: changed %v err %v", in, changed, err)
		}
	}
	wantObj, werr := oracleParseRawObject(in)
	gotObj, gerr := parseRawObject(in)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("raw object %q: oracle err %v, new err %v", in, werr, gerr)
	}
	if werr == nil {
		if len(gotObj) != len(wantObj) {
			t.Fatalf("raw object %q: %d members, oracle %d", in, len(gotObj), len(wantObj))
		}
		for i := range wantObj {
			if gotObj[i].key != wantObj[i].key || !bytes.Equal(gotObj[i].val, wantObj[i].val) {
				t.Fatalf("raw object %q member %d: %q=%q, oracle %q=%q", in, i, gotObj[i].key, gotObj[i].val, wantObj[i].key, wantObj[i].val)
			}
			ws, werr := oracleStringMember(wantObj, wantObj[i].key)
			gs, gerr := gotObj.stringMember(gotObj[i].key)
			if (werr == nil) != (gerr == nil) || ws != gs {
				t.Fatalf("string member %q of %q: %q (%v), oracle %q (%v)", gotObj[i].key, in, gs, gerr, ws, werr)
			}
		}
	}
}

// oracleStringMember is the old rawObject.stringMember (json.Unmarshal into a string).
func oracleStringMember(o rawObject, key string) (string, error) {
	v, ok := o.get(key)
	if !ok || isJSONNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	return s, nil
}

// differentialCorpus covers the corners where a hand-written reader is likely to drift from
// encoding/json: escapes, surrogates, invalid UTF-8, number grammar and formatting, nesting,
// duplicates (including keys equal only after decoding), nulls and malformed input.
func differentialCorpus() []string {
	deep := func(n int, inner string) string {
		return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
	}
	deepObj := func(n int) string {
		return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
	}
	return []string{
		``, ` `, `null`, `true`, `false`, `nul`, `truex`, `0`, `-0`, `-0.0`, `01`, `-01`, `1.`, `.5`, `1e`, `1e+`, `-`, `+1`,
		`1.10`, `1E5`, `1e16`, `1e15`, `1e-5`, `0.0001`, `0.00001`, `1e400`, `-1e400`, `1e-400`, `123456789012345678901234567890`,
		`12345678901234567890.5`, `0.1`, `1.5e300`, `5e-324`, `1.7976931348623157e308`, `1e21`, `1e20`, `1e-7`, `1e-6`, `123e-2`,
		`"a"`, `"\u0041"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"\uDBFF\uDFFF"`,
		`"\u00e9\u2028\u007f\u0000\u001f"`, `"\/\b\f\n\r\t\"\\"`, `"\'"`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01\"", "\"\x7f\"",
		"\"\xff\"", "\"\xe2\x82\"", "\"\xed\xa0\x80\"", "\"é€😀\"", "\"unterminated", `"a"b`, `"a" "b"`,
		`[]`, `[ ]`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`, `[null,1,null]`, `[[null]]`, `{}`, `{ }`, `{"a":1,}`, `{"a" 1}`,
		`{"a":1 "b":2}`, `{1:2}`, `{"a":1}x`, `{"a":1}{}`, ` {"b":1, "a" : [ 1 , {"d":null,"c":2} ] } `,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"b":1,"a":2,"b":3}`, `{"a":null,"a":1}`, `{"a":1,"a":null}`,
		`{"\ud800":1,"\udfff":2}`, `{"é":1,"e":2,"z":3,"😀":4,"\uffff":5}`, `{"a\"":1,"a":2,"a!":3}`,
		`{"type":"Data","pd":"x","payload":{"k":[1,2.50,"s"]},"codec":null}`, `{"x":{"y":{"z":null}},"w":[null]}`,
		deep(64, "1"), deep(65, "1"), deep(65, ""), deep(66, ""), deepObj(64), deepObj(65), deep(70, ""),
		`{"type":"DeliveryAck","ok":true,"refId":"E"}`, `{"type":"DeliveryAck","refId":"E"}`, `{"type":"DeliveryAck","ok":null}`,
		`{"type":"DeliveryAck","ok":true,"ok":null}`, `{"type":"SecureOpen","cid":"c","alg":"CHACHA20P1305","opts":0}`,
		`{"type":"SecureOpen","cid":"c","alg":"CHACHA20P1305"}`, `{"type":"SecureAccept","ok":true,"alg":"x"}`, `{"type":"SecureAccept","alg":"x"}`,
		`{"type":"NodeAttach","originType":"downstream"}`, `{"type":"NodeAttach"}`, `{"type":"KeyAnnounce","created":"2025-01-01T00:00:00Z"}`,
		`{"type":"DeliveryAck"}`, `{"type":1}`, `{"type":null,"ok":true}`, `{"ok":true}`,
		`NaN`, `Infinity`, `{"a":-Infinity}`, "\ufeff{}", "{\"a\":\"\t\"}", `[1e5,1E-5,-0,0.5e1,10.0]`,
	}
}

func TestCanonicalDifferential(t *testing.T) {
	for _, in := range differentialCorpus() {
		checkAgainstOracle(t, []byte(in))
	}
	checkAgainstOracle(t, benchPayload())
}

// FuzzCanonicalDifferential: the single-pass encoder (every option set) and the frame
// scanner agree byte for byte with the encoding/json-based oracle, errors included.
func FuzzCanonicalDifferential(f *testing.F) {
	for _, in := range differentialCorpus() {
		f.Add([]byte(in))
	}
	f.Add([]byte(benchPayload()))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkAgainstOracle(t, in)
	})
}
