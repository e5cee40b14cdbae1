package aft

import (
	"crypto/ed25519"
	"testing"
	"time"
)

func BenchmarkVerifyAFTSigned(b *testing.B) {
	v, priv := loadVectors(b)
	keys := keysFor(v.Signed.KID, priv.Public().(ed25519.PublicKey))
	now := time.Unix(v.Now, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(v.Signed.Token, "REPLICASID", LevelStrict, keys, now); err != nil {
			b.Fatal(err)
		}
	}
}
