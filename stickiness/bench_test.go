package stickiness

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

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
	// Shards evict independently, so leave 2% headroom over n.
	tbl, err := NewTable(Config{Enabled: true, CacheMax: n + n/50})
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
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		tbl.Lookup(sids[(i*7919)%n])
		i++
	}
	b.StopTimer()
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/binding")
	b.ReportMetric(float64(fill.Nanoseconds())/n, "bind-ns/binding")
	start = time.Now()
	lost := tbl.PurgeReplica(replicas[0])
	b.ReportMetric(float64(time.Since(start).Microseconds()), "purge62k-µs")
	if len(lost) != n/16 {
		b.Fatalf("purged %d", len(lost))
	}
	runtime.KeepAlive(tbl)
}

// BenchmarkPurgeReplica10k purges a replica holding 10,000 sessions with one
// channel each out of a 40,000-session table: the re-pin work the sentinel
// does when a replica's socket closes (target: well under 10 ms).
func BenchmarkPurgeReplica10k(b *testing.B) {
	const sessions = 40_000
	sids := make([]string, sessions)
	cids := make([]string, sessions)
	for i := range sids {
		sids[i] = fmt.Sprintf("client%016d", i)
		cids[i] = "auto-math@fame.fabric-" + sids[i]
	}
	replicas := []string{"R000000000000000", "R000000000000001", "R000000000000002", "R000000000000003"}
	tbl, _ := NewTable(DefaultConfig())
	for i, s := range sids {
		tbl.Bind(s, replicas[i%4], 0)
		tbl.BindChannel(cids[i], s, replicas[i%4])
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := 0; i < sessions; i += 4 {
			tbl.Bind(sids[i], replicas[0], 0)
			tbl.BindChannel(cids[i], sids[i], replicas[0])
		}
		b.StartTimer()
		if lost := tbl.PurgeReplica(replicas[0]); len(lost) != sessions/4 {
			b.Fatalf("lost %d", len(lost))
		}
	}
}
