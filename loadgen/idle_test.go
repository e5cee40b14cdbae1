package loadgen

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// BenchmarkIdleNodes reports what an idle Go node costs once it has made a call: goroutines
// (each holds a stack of at least 8 KiB) and live heap bytes per node, each node with its connection on an in-process sentinel
// (so the figures include the sentinel's side of the connection; `make scale` measures that
// side alone). b.N is ignored beyond running once; the counts are the result.
//
//	go test -run '^$' -bench IdleNodes -benchtime 1x ./loadgen/
func BenchmarkIdleNodes(b *testing.B) {
	const nodes = 200
	url := startFabric(b)
	ctx := context.Background()
	settle := func() (goroutines int, heap uint64) {
		// Past the writers' linger (250 ms), then two GCs so that pools let go of what the
		// attaches and calls left.
		time.Sleep(600 * time.Millisecond)
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc // after a GC: the live heap
	}
	g0, m0 := settle()
	all := make([]*node.Node, 0, nodes)
	b.Cleanup(func() {
		for _, n := range all {
			n.Close()
		}
	})
	for range nodes {
		n, err := node.Connect(ctx, node.Config{URL: url, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, n)
		var sum int
		if err := n.Call(ctx, mathagent.Address, "add", map[string]int{"x": 1, "y": 2}, &sum); err != nil {
			b.Fatal(err)
		}
	}
	g1, m1 := settle()
	b.ReportMetric(float64(g1-g0)/nodes, "goroutines/node")
	b.ReportMetric(float64(int64(m1)-int64(m0))/nodes/1024, "heap-KiB/node")
	for range b.N {
	}
}
