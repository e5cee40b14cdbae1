package envelope

import (
	crand "crypto/rand"
	"crypto/sha256"
	"math/big"
	"math/rand/v2"
	"sync"
	"time"
)

const base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// IDLength is the length of every generated identifier (envelope, trace, corr, flow and
// system ids), as the reference generates them.
const IDLength = 16

// NewID returns 16 random base62 characters. Nobody parses ids, but dedupe and correlation
// rely on them being unguessable and unique, so they come from a CSPRNG: a ChaCha8 stream
// seeded from crypto/rand, pooled so that concurrent callers do not share state. That is
// several times cheaper than a crypto/rand read per id, which cost ~5% of a client's CPU
// (three ids per call).
func NewID() string {
	g := idPool.Get().(*rand.ChaCha8)
	var out [IDLength]byte
	n := 0
	for n < IDLength {
		for r, k := g.Uint64(), 0; k < 8 && n < IDLength; r, k = r>>8, k+1 {
			// 248 = 4*62: rejecting larger bytes keeps the characters uniform.
			if c := byte(r); c < 248 {
				out[n] = base62[c%62]
				n++
			}
		}
	}
	idPool.Put(g)
	return string(out[:])
}

// idPool holds ChaCha8 generators, each seeded from crypto/rand when made.
var idPool = sync.Pool{New: func() any {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails on supported platforms
	return rand.NewChaCha8(seed)
}}

// SecureDigest returns base62 (big-endian, no padding) of the first 16 bytes of SHA-256(s).
// A node's envelope sid is SecureDigest of its physical path.
func SecureDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	n := new(big.Int).SetBytes(sum[:16])
	if n.Sign() == 0 {
		return "0"
	}
	var buf [24]byte
	i := len(buf)
	sixtyTwo := big.NewInt(62)
	mod := new(big.Int)
	for n.Sign() > 0 {
		n.DivMod(n, sixtyTwo, mod)
		i--
		buf[i] = base62[mod.Int64()]
	}
	return string(buf[i:])
}

// TimeFormat is the envelope ts layout: ISO-8601 UTC with milliseconds and Z.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Now returns the current time in the envelope ts format.
func Now() string { return FormatTime(time.Now()) }

// FormatTime formats t in the envelope ts format.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }
