package balancer

import "math/bits"

// The hash is deliberately fixed (no per-process seed): two sentinels, or one
// sentinel before and after a restart, must rank members identically for the
// same key. It is not a defence against adversarial keys; client session ids
// are assigned by the runtime, and bounded load caps the damage of skew.

const (
	prime1 = 0x9E3779B97F4A7C15
	prime2 = 0xC2B2AE3D27D4EB4F
)

// fmix64 is the murmur3 finaliser: full avalanche over 64 bits.
func fmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// hashString hashes s eight bytes at a time without allocating.
func hashString(s string) uint64 {
	h := prime2 ^ uint64(len(s))*prime1 // non-zero even for ""
	for len(s) >= 8 {
		v := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = bits.RotateLeft64(h^(v*prime2), 31) * prime1
		s = s[8:]
	}
	if len(s) > 0 {
		var v uint64
		for i := 0; i < len(s); i++ {
			v |= uint64(s[i]) << (8 * i)
		}
		h = bits.RotateLeft64(h^(v*prime2), 31) * prime1
	}
	return fmix64(h)
}

// score is the rendezvous weight of member for a key whose hash is keyHash.
func score(keyHash uint64, member string) uint64 {
	return fmix64(keyHash ^ hashString(member))
}

// better reports whether (s1, id1) outranks (s2, id2); equal scores are
// broken by id so that the ranking is a total order.
func better(s1 uint64, id1 string, s2 uint64, id2 string) bool {
	if s1 != s2 {
		return s1 > s2
	}
	return id1 < id2
}
