package security

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// checkSecView asserts viewSec agrees with encoding/json's reading (parseSecJSON): same error,
// same signature kid and val; and that ParseSec (fast path or not) returns exactly what
// parseSecJSON does.
func checkSecView(t *testing.T, in []byte) {
	t.Helper()
	want, werr := parseSecJSON(in)
	full, ferr := ParseSec(in)
	if (werr == nil) != (ferr == nil) || (werr != nil && errors.Is(ferr, ErrBadSec) != errors.Is(werr, ErrBadSec)) || !reflect.DeepEqual(full, want) {
		t.Fatalf("%q: ParseSec %+v, %v; encoding/json %+v, %v", in, full, ferr, want, werr)
	}
	got, gerr := viewSec(in)
	if (werr == nil) != (gerr == nil) || (werr != nil && errors.Is(gerr, ErrBadSec) != errors.Is(werr, ErrBadSec)) {
		t.Fatalf("%q: ParseSec err %v, viewSec err %v", in, werr, gerr)
	}
	if werr != nil {
		return
	}
	wantSig := want != nil && want.Sig != nil
	if got.hasSig != wantSig {
		t.Fatalf("%q: hasSig %v, ParseSec %v", in, got.hasSig, wantSig)
	}
	if wantSig && (string(got.kid) != want.Sig.Kid || string(got.val) != want.Sig.Val) {
		t.Fatalf("%q: kid/val %q/%q, ParseSec %q/%q", in, got.kid, got.val, want.Sig.Kid, want.Sig.Val)
	}
}

var secViewCorpus = []string{
	``, ` `, `null`, `{}`, ` { } `, `[]`, `"x"`, `{"sig":{"kid":"k","val":"v"}}`, `{"sig":{"kid":"k","val":"v","alg":"EdDSA"}}`,
	`{ "sig" : { "val" : "v" , "kid" : "k" } , "enc" : { "alg" : "chacha20-poly1305-channel", "kid":"c","val":"00"} }`,
	`{"sig":{"kid":"","val":"v"}}`, `{"sig":{"kid":"k"}}`, `{"sig":{"val":"v"}}`, `{"sig":null}`, `{"sig":{}}`,
	`{"enc":{"kid":"c"}}`, `{"enc":{"alg":"x"}}`, `{"enc":null}`, `{"sig":{"kid":"k","val":"v"},"sig":{"kid":"k2","val":"v2"}}`,
	`{"sig":{"kid":"k","kid":"k2","val":"v"}}`, `{"SIG":{"KID":"k","Val":"v"}}`, `{"sig":{"kid":"\u006b","val":"v"}}`,
	`{"sig":{"kid":"k","val":"v","x":1}}`, `{"sig":{"kid":"k","val":"v"},"x":[1,{"y":null}]}`, `{"sig":{"kid":1,"val":"v"}}`,
	`{"sig":{"kid":"k","val":"v"}}x`, `{"sig":{"kid":"k","val":"v"}`, `{"sig":{"kid":"k","val":"v",}}`, "{\"sig\":{\"kid\":\"\xff\",\"val\":\"v\"}}",
	`{"sig":{"kid":"k","val":"v"},}`, `{"enc":{"alg":"a","kid":"c","val":"v"},"sig":{"alg":"EdDSA","val":"v","kid":"k"}}`, `{"enc":{"kid":"c"},"sig":{"kid":"k","val":"v"}}`, `{"sig" {"kid":"k","val":"v"}}`, `{"sig":{"kid":"k" "val":"v"}}`,
}

func TestSecViewMatchesParseSec(t *testing.T) {
	for _, in := range secViewCorpus {
		checkSecView(t, []byte(in))
	}
}

// FuzzSecViewDifferential: the in-place sec reader agrees with ParseSec on every input.
func FuzzSecViewDifferential(f *testing.F) {
	for _, in := range secViewCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkSecView(t, in) })
}

func TestDecodeSigValBytes(t *testing.T) {
	sig := ed25519.Sign(testSeedKey(), []byte("m"))
	good := []byte(base64.RawURLEncoding.EncodeToString(sig))
	for _, in := range []string{string(good), string(good) + "==", string(good[:85]), string(good) + "A", string(good[:40]) + "\n" + string(good[40:]), "", "!!!!"} {
		var buf [ed25519.SignatureSize]byte
		got, gerr := decodeSigValBytes(&buf, []byte(in))
		want, werr := decodeSigVal(in)
		if (gerr == nil) != (werr == nil) || !bytes.Equal(got, want) {
			t.Errorf("%q: got %x (%v), want %x (%v)", in, got, gerr, want, werr)
		}
	}
}

// TestSignSecHeaderMatchesMarshal: the header Sign writes directly is what json.Marshal of the
// same envelope.Sec gives, for kids that take the direct path and kids that do not.
func TestSignSecHeaderMatchesMarshal(t *testing.T) {
	for _, kid := range []string{"k", "6NBVcdkbDNMsmpta", "a<b", "a&b", `q"k`, "é", "tab\there", ""} {
		for _, omit := range []bool{false, true} {
			env := benchEnvelope(t)
			s := &Signer{Key: testSeedKey(), Kid: kid, OmitAlg: omit}
			if err := s.Sign(env); err != nil {
				t.Fatalf("%q: %v", kid, err)
			}
			sec, err := ParseSec(env.Sec)
			if err != nil || sec == nil || sec.Sig == nil {
				if kid == "" { // an empty kid cannot be carried: ParseSec refuses it
					continue
				}
				t.Fatalf("%q: %v", kid, err)
			}
			want, _ := json.Marshal(sec)
			if !bytes.Equal(env.Sec, want) {
				t.Errorf("kid %q omitAlg %v: sec %s, json.Marshal %s", kid, omit, env.Sec, want)
			}
		}
	}
}

// TestVerifyNonDataBothForms: a non-Data frame verifies whether the signer digested the wire
// form (TS) or the Python model form with defaults filled in, and not with another digest.
func TestVerifyNonDataBothForms(t *testing.T) {
	key := testSeedKey()
	pub := key.Public().(ed25519.PublicKey)
	for _, frame := range []string{
		`{"type":"SecureOpen","cid":"c1","ephPub":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`,
		`{"type":"DeliveryAck","refId":"E1"}`,
		`{"type":"DeliveryAck","refId":"E1","ok":true,"code":null}`,
	} {
		env := unsigned(t, a2Data, true)
		env.Frame = json.RawMessage(frame)
		norm, _, err := normalizeFrameSlow(env.Frame)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range []json.RawMessage{env.Frame, norm} {
			d, err := FrameDigest(form)
			if err != nil {
				t.Fatal(err)
			}
			e := *env
			e.Sec = json.RawMessage(`{"sig":{"kid":"k","val":"` + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, TBS(e.SID, &e, d))) + `"}}`)
			if err := VerifyShallow(&e, pub); err != nil {
				t.Errorf("%s signed over %s: %v", frame, form, err)
			}
		}
		e := *env
		e.Sec = json.RawMessage(`{"sig":{"kid":"k","val":"` + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, TBS(e.SID, &e, "other"))) + `"}}`)
		if err := VerifyShallow(&e, pub); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s signed over another digest: %v", frame, err)
		}
	}
}
