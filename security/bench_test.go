package security

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// benchPayload is a ~500-byte JSON-RPC payload.
func benchPayload() json.RawMessage {
	p := fmt.Sprintf(`{"jsonrpc":"2.0","id":"req-1","method":"add","params":{"x":3,"y":4.5,"note":"héllo","blob":"%s"}}`, strings.Repeat("x", 410))
	return json.RawMessage(p)
}

func benchEnvelope(b testing.TB) *envelope.Envelope {
	env := unsigned(b, a2Data, true)
	env.Frame = json.RawMessage(`{"type":"Data","codec":"json","payload":` + string(benchPayload()) + `}`)
	return env
}

func BenchmarkCanonicalJSON(b *testing.B) {
	p := benchPayload()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, err := CanonicalJSON(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s := &Signer{Key: testSeedKey(), Kid: "k"}
	tmpl := benchEnvelope(b)
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		env := *tmpl
		if err := s.Sign(&env); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSigned(b *testing.B) *envelope.Envelope {
	env := benchEnvelope(b)
	if err := (&Signer{Key: testSeedKey(), Kid: "k"}).Sign(env); err != nil {
		b.Fatal(err)
	}
	return env
}

func BenchmarkVerify(b *testing.B) {
	env := benchSigned(b)
	pub := testSeedKey().Public().(ed25519.PublicKey)
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if err := Verify(env, pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyShallow is what the sentinel pays per forwarded signed envelope.
func BenchmarkVerifyShallow(b *testing.B) {
	env := benchSigned(b)
	ks := NewKeyStore(KeyStoreOptions{})
	if err := ks.Add(SigningJWK(testSeedKey().Public().(ed25519.PublicKey), "k"), "/Cb8WVCC4ML5RsFM/client01"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, err := ks.Verify(env, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	r, _ := NewX25519Key(nil)
	p := benchPayload()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, _, err := Seal(p, "json", r.Public, "k", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	r, _ := NewX25519Key(nil)
	p := benchPayload()
	ct, enc, err := Seal(p, "json", r.Public, "k", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, _, err := Open(ct, enc, r.Private); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChannelEncrypt(b *testing.B) {
	cli, _ := newChannelPair(b, ChannelOptions{})
	p := benchPayload()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, _, err := cli.Encrypt(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChannelDecrypt(b *testing.B) {
	cli, srv := newChannelPair(b, ChannelOptions{})
	p := benchPayload()
	ct, enc, err := cli.Encrypt(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, err := srv.Decrypt(ct, enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyShallowAck is the sentinel's check of a signed non-Data frame (a
// DeliveryAck): the frame digest is computed, not read from pd.
func BenchmarkVerifyShallowAck(b *testing.B) {
	env := unsigned(b, a2Data, true)
	env.Frame = json.RawMessage(`{"type":"DeliveryAck","ok":true,"refId":"ENV1","code":null,"reason":null}`)
	if err := (&Signer{Key: testSeedKey(), Kid: "k"}).Sign(env); err != nil {
		b.Fatal(err)
	}
	ks := NewKeyStore(KeyStoreOptions{})
	if err := ks.Add(SigningJWK(testSeedKey().Public().(ed25519.PublicKey), "k"), "/Cb8WVCC4ML5RsFM/client01"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, err := ks.Verify(env, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseSec is the sec header read every node receive does (a signed envelope, no enc).
func BenchmarkParseSec(b *testing.B) {
	raw := []byte(`{"sig":{"kid":"6NBVcdkbDNMsmpta","val":"` + strings.Repeat("A", 86) + `","alg":"EdDSA"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if s, err := ParseSec(raw); err != nil || s.Sig == nil {
			b.Fatal(s, err)
		}
	}
}
