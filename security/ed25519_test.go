package security

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// The voi-backed Ed25519 must sign the same bytes and accept exactly what crypto/ed25519
// accepts: a signature one side accepts and the other refuses would split peers.

func TestEd25519SignsLikeStdlib(t *testing.T) {
	for i := 0; i < 200; i++ {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, i*7)
		rand.Read(msg)
		got, want := edSign(priv, msg), ed25519.Sign(priv, msg)
		if !bytes.Equal(got, want) {
			t.Fatalf("signature %d differs from crypto/ed25519's", i)
		}
		if !edVerify(verifyKey{pub: pub}, msg, got) || !edVerify(verifyKey{pub: pub, exp: expandKey(pub)}, msg, got) {
			t.Fatalf("signature %d not verified", i)
		}
		bad := bytes.Clone(got)
		bad[i%len(bad)] ^= 1 << (i % 8)
		if agree(t, pub, msg, bad) != ed25519.Verify(pub, msg, bad) {
			t.Fatalf("a corrupted signature %d is judged differently", i)
		}
	}
}

// edgeCases are inputs where Ed25519 implementations are known to disagree: small-order and
// non-canonical public keys and R values, S at or above the group order, wrong sizes.
func edgeCases(t testing.TB) [][3][]byte {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	identity := h("0100000000000000000000000000000000000000000000000000000000000000")
	order2 := h("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	order8 := h("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	nonCanonical := h("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	zeroS := make([]byte, 32)
	l := h("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010") // S = L
	var out [][3][]byte
	for _, pub := range [][]byte{identity, order2, order8, nonCanonical} {
		for _, r := range [][]byte{identity, order2, order8, nonCanonical} {
			for _, s := range [][]byte{zeroS, l} {
				out = append(out, [3][]byte{pub, []byte("msg"), append(bytes.Clone(r), s...)})
			}
		}
	}
	out = append(out, [3][]byte{identity[:31], []byte("msg"), make([]byte, 64)}, [3][]byte{identity, []byte("msg"), make([]byte, 63)})
	return out
}

// agree is edVerify's verdict with the plain and with the expanded key; it fails the test
// when the two differ.
func agree(t *testing.T, pub, msg, sig []byte) bool {
	t.Helper()
	plain := edVerify(verifyKey{pub: pub}, msg, sig)
	if expanded := edVerify(verifyKey{pub: pub, exp: expandKey(pub)}, msg, sig); expanded != plain {
		t.Fatalf("pub %x sig %x: plain key %v, expanded key %v", pub, sig, plain, expanded)
	}
	return plain
}

func TestEd25519EdgeCasesLikeStdlib(t *testing.T) {
	for i, c := range edgeCases(t) {
		want := len(c[0]) == ed25519.PublicKeySize && ed25519.Verify(c[0], c[1], c[2])
		if got := agree(t, c[0], c[1], c[2]); got != want {
			t.Errorf("case %d (pub %x, sig %x): edVerify %v, crypto/ed25519 %v", i, c[0], c[2], got, want)
		}
	}
}

func FuzzEd25519AgreesWithStdlib(f *testing.F) {
	for _, c := range edgeCases(f) {
		f.Add(c[0], c[1], c[2])
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.Add([]byte(pub), []byte("hello"), ed25519.Sign(priv, []byte("hello")))
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
		if got := agree(t, pub, msg, sig); got != want {
			t.Fatalf("pub %x msg %x sig %x: edVerify %v, crypto/ed25519 %v", pub, msg, sig, got, want)
		}
	})
}
