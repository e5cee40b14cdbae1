package stickiness

import (
	"crypto/ed25519"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func BenchmarkVerifyAFTSigned(b *testing.B) {
	v, priv := loadVectors(b)
	keys := keysFor(v.Signed.KID, priv.Public().(ed25519.PublicKey))
	now := time.Unix(v.Now, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyAFT(v.Signed.Token, "REPLICASID", LevelStrict, keys, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtractAFT(b *testing.B) {
	meta := []byte(`{"set":{"aft":"eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.eyJzaWQiOiJSIn0."},"other":{"x":[1,2,3]}}`)
	b.ReportAllocs()
	for b.Loop() {
		ExtractAFT(meta)
	}
}

// BenchmarkTable1M fills a table with one million session bindings over 16
// replicas (16-char ids, 22-char client sids as the runtime makes them) and
// reports heap bytes per binding, then measures Lookup on the full table.
func BenchmarkTable1M(b *testing.B) {
	const n = 1_000_000
	sids := make([]string, n)
	for i := range sids {
		sids[i] = fmt.Sprintf("client%016d", i)
	}
	replicas := make([]string, 16)
	for i := range replicas {
		replicas[i] = fmt.Sprintf("R%015d", i)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tbl, err := NewTable(Config{Enabled: true, CacheMax: n})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i, s := range sids {
		tbl.Bind(s, replicas[i%len(replicas)], 0)
	}
	fill := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := tbl.Stats(); st.Size != n {
		b.Fatalf("size %d", st.Size)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/binding")
	b.ReportMetric(float64(fill.Nanoseconds())/n, "bind-ns/binding")
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		tbl.Lookup(sids[(i*7919)%n])
		i++
	}
	b.StopTimer()
	start = time.Now()
	lost := tbl.PurgeReplica(replicas[0])
	b.ReportMetric(float64(time.Since(start).Microseconds()), "purge62k-µs")
	if len(lost) != n/16 {
		b.Fatalf("purged %d", len(lost))
	}
	runtime.KeepAlive(tbl)
}
