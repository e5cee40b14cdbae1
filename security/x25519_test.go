package security

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"testing"
)

// TestX25519FromPrivateMatchesECDH: the single-multiplication public key is the X25519 public
// key (checked against crypto/ecdh and RFC 7748 §6.1 Alice).
func TestX25519FromPrivateMatchesECDH(t *testing.T) {
	alicePriv := mustHex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	alicePub := mustHex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	kp, err := X25519FromPrivate(alicePriv)
	if err != nil || !bytes.Equal(kp.Public, alicePub) {
		t.Fatalf("public %x (%v), want %x", kp.Public, err, alicePub)
	}
	if _, err := X25519FromPrivate(make([]byte, 31)); err == nil {
		t.Fatal("31-byte private key accepted")
	}
	k, _ := ecdh.X25519().NewPrivateKey(fill(0x42, 32))
	kp, _ = X25519FromPrivate(fill(0x42, 32))
	if !bytes.Equal(kp.Public, k.PublicKey().Bytes()) {
		t.Fatal("public key differs from crypto/ecdh")
	}
}

// TestOpenManyRecipients: more recipients than the parsed-key cache holds all still open, and
// a bad key length is ErrDecrypt.
func TestOpenManyRecipients(t *testing.T) {
	p := []byte(`{"a":1}`)
	for i := 0; i < maxStaticKeys+4; i++ {
		r, err := X25519FromPrivate(fill(byte(i+1), 32))
		if err != nil {
			t.Fatal(err)
		}
		ct, enc, err := Seal(p, "json", r.Public, "k", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, codec, err := Open(ct, enc, r.Private)
		if err != nil || string(got) != string(p) || codec != "json" {
			t.Fatalf("recipient %d: %s %q %v", i, got, codec, err)
		}
		if _, _, err := Open(ct, enc, r.Private[:31]); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("short key: %v", err)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
