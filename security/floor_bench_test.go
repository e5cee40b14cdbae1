package security

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"testing"
)

// The floor benchmarks measure the primitives alone, so the envelope-level figures can be
// read against what the curve arithmetic itself costs on this machine. The Ed25519 ones use
// what envelope signing uses (ed25519.go); the Stdlib ones are crypto/ed25519, for comparison.

func BenchmarkFloorEd25519Sign(b *testing.B) {
	k := testSeedKey()
	msg := make([]byte, 200)
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		_ = edSign(k, msg)
	}
}

func BenchmarkFloorStdlibEd25519Sign(b *testing.B) {
	k := testSeedKey()
	msg := make([]byte, 200)
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		_ = ed25519.Sign(k, msg)
	}
}

func BenchmarkFloorEd25519Verify(b *testing.B) {
	k := testSeedKey()
	msg := make([]byte, 200)
	sig := ed25519.Sign(k, msg)
	key := verifyKey{pub: k.Public().(ed25519.PublicKey)}
	key.exp = expandKey(key.pub) // as KeyStore.Verify, which the sentinel and nodes use
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if !edVerify(key, msg, sig) {
			b.Fatal("verify")
		}
	}
}

func BenchmarkFloorStdlibEd25519Verify(b *testing.B) {
	k := testSeedKey()
	msg := make([]byte, 200)
	sig := ed25519.Sign(k, msg)
	pub := k.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}

// BenchmarkFloorX25519 is one X25519 scalar multiplication (ECDH with a parsed key).
func BenchmarkFloorX25519(b *testing.B) {
	priv, _ := ecdh.X25519().NewPrivateKey(fill(0x11, 32))
	peer, _ := ecdh.X25519().NewPrivateKey(fill(0x22, 32))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		if _, err := priv.ECDH(peer.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}
