package security

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

const base62Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// SecureDigest is the reference's secure_digest: the first 16 bytes of SHA-256(s) read as a
// big-endian unsigned integer and written in base62 (digits, lower, upper), most significant
// digit first, without zero padding, so the length varies (usually 21-22 characters).
func SecureDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base62u128(binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16]))
}

// SecureDigestBytes is SecureDigest over bytes, avoiding a string copy on hot paths.
func SecureDigestBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return base62u128(binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16]))
}

// appendSecureDigest appends SecureDigestBytes(b) to dst without allocating.
func appendSecureDigest(dst, b []byte) []byte {
	sum := sha256.Sum256(b)
	var out [24]byte
	return append(dst, base62u128Into(&out, binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16]))...)
}

// SIDForPath is the sid the reference derives from a node's physical path.
func SIDForPath(physicalPath string) string { return SecureDigest(physicalPath) }

// base62u128 writes the 128-bit integer hi:lo in base62 by long division on two words.
func base62u128(hi, lo uint64) string {
	var out [24]byte
	return string(base62u128Into(&out, hi, lo))
}

func base62u128Into(out *[24]byte, hi, lo uint64) []byte { // 62^22 > 2^128
	if hi == 0 && lo == 0 {
		out[0] = '0'
		return out[:1]
	}
	i := len(out)
	for hi != 0 || lo != 0 {
		var r uint64
		hi, r = hi/62, hi%62
		lo, r = bits.Div64(r, lo, 62)
		i--
		out[i] = base62Alphabet[r]
	}
	return out[i:]
}
