package stickiness

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/fame-go/fame/security/aft"
)

// aftVectors is the part of package aft's test vectors the table tests use: a reference-signed
// token and its key, so LearnAFT is exercised with the exact bytes a replica sends.
type aftVectors struct {
	SeedHex string `json:"seed_hex"`
	Now     int64  `json:"now"`
	Signed  struct {
		KID, Token string
	} `json:"signed"`
	Unsigned struct {
		Token string
	} `json:"unsigned"`
}

func loadVectors(t testing.TB) (aftVectors, ed25519.PrivateKey) {
	t.Helper()
	raw, err := os.ReadFile("../security/aft/testdata/aft_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v aftVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	seed, err := hex.DecodeString(v.SeedHex)
	if err != nil {
		t.Fatal(err)
	}
	return v, ed25519.NewKeyFromSeed(seed)
}

func keysFor(kid string, pub ed25519.PublicKey) aft.KeyLookup {
	return func(k string) (ed25519.PublicKey, bool) {
		if k == kid {
			return pub, true
		}
		return nil, false
	}
}
