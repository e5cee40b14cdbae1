package stickiness

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Random byte damage anywhere in a real file (meta, branch, leaf, freelist
// pages): the recovering open never panics or faults, and the store it
// returns (repaired in place or fresh) loads, sweeps and writes.
func TestStoreRandomDamage(t *testing.T) {
	valid := validStore(t, 300)
	rnd := rand.New(rand.NewPCG(3, 4))
	recovered := 0
	for i := 0; i < 200; i++ {
		data := bytes.Clone(valid)
		for j := 0; j < 1+rnd.IntN(20); j++ {
			data[rnd.IntN(len(data))] = byte(rnd.Uint32())
		}
		path := filepath.Join(t.TempDir(), "s.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenStoreWith(path, StoreOptions{RecoverCorrupt: true, DiskSweep: -1, LockTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if s.Corrupt() > 0 {
			recovered++
		}
		if _, err := s.Load(); err != nil {
			t.Fatalf("case %d: load: %v", i, err)
		}
		if err := s.SweepDisk(); err != nil {
			t.Fatalf("case %d: sweep: %v", i, err)
		}
		s.SaveMember("p", "r")
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Members(); err != nil || len(m["p"]) != 1 {
			t.Fatalf("case %d: store not usable after recovery: %v %v", i, m, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("case %d: close: %v", i, err)
		}
	}
	t.Logf("%d of 200 damaged files set aside", recovered)
}
