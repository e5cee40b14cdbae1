package security

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"fmt"
	"testing"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
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

// BenchmarkFloorEd25519BatchVerify is curve25519-voi's batch verifier over n signatures of
// two keys (a sentinel's reader sees the envelopes of one peer, from one or a few keys), per
// signature, so it reads against BenchmarkFloorEd25519Verify. It is what batch verification
// on the sentinel could save at best. Note that the batch equation is the cofactored one:
// voi refuses to batch entries verified cofactorless (VerifyOptionsStdLib, what edVerify uses
// so that exactly what crypto/ed25519 and the reference accept is accepted), so these entries
// use the default options.
func BenchmarkFloorEd25519BatchVerify(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8, 16, 32, 64} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			keys := []ed25519.PrivateKey{testSeedKey(), ed25519.NewKeyFromSeed(fill(0x5a, 32))}
			exp := []*voi.ExpandedPublicKey{expandKey(keys[0].Public().(ed25519.PublicKey)), expandKey(keys[1].Public().(ed25519.PublicKey))}
			msgs, sigs := make([][]byte, n), make([][]byte, n)
			for i := range n {
				msgs[i] = fill(byte(i), 200)
				sigs[i] = ed25519.Sign(keys[i%2], msgs[i])
			}
			v := voi.NewBatchVerifierWithCapacity(n)
			b.ReportAllocs()
			defer cpuMetric(b)()
			for b.Loop() {
				v.Reset()
				for i := range n {
					v.AddExpanded(exp[i%2], msgs[i], sigs[i])
				}
				if !v.VerifyBatchOnly(nil) {
					b.Fatal("batch verify")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
		})
	}
}
