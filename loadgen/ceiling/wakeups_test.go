package ceiling

import (
	"bytes"
	"context"
	"fmt"
	"runtime/trace"
	"sync"
	"testing"

	"github.com/fame-go/fame/loadgen/internal/wakeups"
)

// BenchmarkCeilingWakeups counts goroutine wake-ups per call through the one-process ceiling
// (caller, relay and echo as goroutines), by the method of loadgen's BenchmarkCallWakeups, so
// the two can be set side by side:
//
//	go test -run '^$' -bench Wakeups -benchtime 5000x -v ./loadgen/ ./loadgen/ceiling/
func BenchmarkCeilingWakeups(b *testing.B) {
	for _, batched := range []bool{false, true} {
		for _, callers := range []int{1, 50} {
			b.Run(fmt.Sprintf("batched=%t/callers=%d", batched, callers), func(b *testing.B) {
				cfg := Config{Batched: batched}
				lo, err := StartLocal(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer lo.Close()
				c, err := DialCaller(context.Background(), lo.URL, "w", cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				ctx := context.Background()
				for range 200 {
					if err := c.Call(ctx, 0); err != nil {
						b.Fatal(err)
					}
				}
				var buf bytes.Buffer
				if err := trace.Start(&buf); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				var wg sync.WaitGroup
				errs := make(chan error, callers)
				for w := range callers {
					k := b.N / callers
					if w < b.N%callers {
						k++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range k {
							if err := c.Call(ctx, w); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				trace.Stop()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				st, err := wakeups.Count(&buf)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(st.Wakeups)/float64(b.N), "wakeups/call")
				if b.N >= 100 {
					b.Logf("%d calls, %d callers: %.2f wake-ups/call; woken where they had blocked:\n%s", b.N, callers, float64(st.Wakeups)/float64(b.N), st.Top(b.N, 8))
				}
			})
		}
	}
}
