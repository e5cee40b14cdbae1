package security

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Envelope signatures are Ed25519, made and checked with curve25519-voi rather than
// crypto/ed25519: on this project's machines it verifies in about half the time (34 µs
// against 63 µs per verification) and signs in about half (12 µs against 26 µs), and an
// overlay call costs two signatures and four verifications. Signatures are the same bytes
// (Ed25519 is deterministic), and verification runs with VerifyOptionsStdLib, which accepts
// exactly what crypto/ed25519 accepts (FuzzEd25519AgreesWithStdlib checks it), so that no
// signature the reference peers or earlier versions made is judged differently. Keys stay
// crypto/ed25519 types everywhere else.

var stdlibVerify = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// verifyKey is a public key to verify with and, for keys kept in a KeyStore, its expanded
// form: decompressing the key point is about a fifth of a verification, and a stored key is
// used for every envelope its node signs. The expanded form costs ~1.5 KiB per signing key.
type verifyKey struct {
	pub ed25519.PublicKey
	exp *voi.ExpandedPublicKey // nil: expanded on each verification
}

// expandKey is pub's expanded form, or nil when pub is not a valid point (verification with
// the plain key then refuses every signature, as crypto/ed25519 does).
func expandKey(pub ed25519.PublicKey) *voi.ExpandedPublicKey {
	if len(pub) != ed25519.PublicKeySize {
		return nil
	}
	exp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil
	}
	return exp
}

// edVerify is ed25519.Verify; it reports false (never panics) for keys or signatures of the
// wrong size.
func edVerify(k verifyKey, msg, sig []byte) bool {
	if len(k.pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	if k.exp != nil {
		return voi.VerifyExpandedWithOptions(k.exp, msg, sig, stdlibVerify)
	}
	return voi.VerifyWithOptions(voi.PublicKey(k.pub), msg, sig, stdlibVerify)
}

// edSign is ed25519.Sign; key must be ed25519.PrivateKeySize bytes (callers check).
func edSign(key ed25519.PrivateKey, msg []byte) []byte {
	return voi.Sign(voi.PrivateKey(key), msg)
}
