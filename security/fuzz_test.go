package security

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// FuzzCanonicalJSON: never panics; output is valid JSON and a fixed point (canonicalising the
// canonical form changes nothing); the JS style is a fixed point too.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"a":1.0,"b":1e16,"c":1e-5,"d":0.1,"e":[true,null]}`, `"\u2028é"`, `[-0,1E400,{"z":{},"a":[]}]`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalJSON(in)
		if err != nil {
			return
		}
		if !json.Valid(out) && !bytes.Contains(out, []byte("Infinity")) && !bytes.Contains(out, []byte("NaN")) {
			t.Fatalf("invalid output %q from %q", out, in)
		}
		if again, err := CanonicalJSON(out); err == nil && !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point: %q -> %q", out, again)
		}
		js, err := CanonicalJSONStyle(in, JSNumbers)
		if err != nil {
			t.Fatalf("JS style failed where Python style succeeded: %v", err)
		}
		if again, err := CanonicalJSONStyle(js, JSNumbers); err != nil || !bytes.Equal(again, js) {
			t.Fatalf("JS not a fixed point: %q -> %q (%v)", js, again, err)
		}
	})
}

func FuzzParseJWK(f *testing.F) {
	f.Add([]byte(`{"crv":"Ed25519","x":"YAQXVSUltLsttBkLcQiRtqbMT6Nkl36WgEgB-RD5-Vk","kty":"OKP","alg":"EdDSA","use":"sig","kid":"6NBVcdkbDNMsmpta"}`))
	f.Add([]byte(`{"crv":"X25519","x":"huA1wlmDaAhkvp7cCA-bVSH-kHjTYnwoOq6M2leRgRI","kty":"OKP","kid":"07L9OlDNtRoBvnEu","use":"enc","alg":"ECDH-ES","x5c":["AAAA"]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		j, err := ParseJWK(in)
		if err != nil {
			return
		}
		_, _ = j.Ed25519()
		_, _ = j.X25519()
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		j2, err := ParseJWK(b)
		if err != nil {
			t.Fatalf("re-encoded JWK %s rejected: %v", b, err)
		}
		ks := NewKeyStore(KeyStoreOptions{Trust: NewTrustBundle(nil)})
		_ = ks.Add(j2, "/p")
	})
}

func FuzzCertificateChain(f *testing.F) {
	root := newTestCA(f, "Fame Test Root CA", nil)
	pub := testSeedKey().Public().(ed25519.PublicKey)
	leaf := root.issue(f, pub, "/a/b", "b", []string{"x.y"}, testNow.Add(-1), testNow.Add(1e12))
	f.Add(pemChain(leaf))
	f.Add(leaf.Raw)
	bundle := NewTrustBundle(nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = ParseCertificates(in)
		_, _ = VerifyNodeCert(in, bundle, "", testNow)
		_, _ = VerifyX5C([]string{base64.StdEncoding.EncodeToString(in)}, bundle, "x", testNow)
	})
}

func FuzzSealedOpen(f *testing.F) {
	recipient, _ := X25519FromPrivate(fill(0x33, 32))
	f.Add("wmLtGQsVF6JHCnbV1jTxKwWSYpowY6VCSJReRWyHK2si_LOoupB81HRjcgxoSSCoOWGVAM1UmEtINjRL7hn6", "_y7kVgHsG2cxDHeQQEWFrmlzMe7hwfjPJBlzHB__Pmuqqqqqqqqqqqqqqqo=")
	f.Fuzz(func(t *testing.T, payload, val string) {
		p, _, err := Open(payload, envelope.Encryption{Alg: EncAlgSealed, Kid: "k", Val: val}, recipient.Private)
		if err == nil && !json.Valid(p) {
			t.Fatalf("opened payload is not JSON: %q", p)
		}
	})
}

func FuzzChannelDecrypt(f *testing.F) {
	key := fill(0x5a, 32)
	ch, _ := NewChannelFromKey("cid", key, ChannelOptions{})
	p, enc, _ := ch.Encrypt(json.RawMessage(`{"a":1}`))
	f.Add(p, enc.Val)
	f.Fuzz(func(t *testing.T, payload, nonce string) {
		out, err := ch.Decrypt(payload, envelope.Encryption{Alg: EncAlgChannel, Kid: "cid", Val: nonce})
		if err == nil && !json.Valid(out) {
			t.Fatalf("decrypted payload is not JSON: %q", out)
		}
	})
}

// FuzzSecHeader covers sec parsing and the verification path that consumes it.
func FuzzSecHeader(f *testing.F) {
	f.Add([]byte(`{"sig":{"kid":"test-sig-kid","val":"UgYM64ysrLt3dd7-go7Zu6srZy2ORwvlDfoEyjIQKIwXjg-JnqEgiNP1IuU7TDVRZuVB4d2lYq7BQdjoEIwrDg"}}`), []byte(`{"type":"Data","payload":{"a":1},"pd":"x"}`))
	f.Add([]byte(`{"enc":{"alg":"chacha20-poly1305-channel","kid":"c","val":"00"}}`), []byte(`{"type":"KeyRequest","kid":"k"}`))
	pub := testSeedKey().Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, sec, frame []byte) {
		s, err := ParseSec(sec)
		if err == nil {
			_ = EncLevel(s)
		}
		env := &envelope.Envelope{ID: "i", SID: "s", Sec: sec, Frame: frame}
		_ = Verify(env, pub)
		_ = VerifyShallow(env, pub)
		_, _ = FrameDigest(frame)
	})
}
