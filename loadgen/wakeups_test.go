package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"runtime/trace"
	"sync"
	"testing"

	"github.com/fame-go/fame/loadgen/internal/wakeups"
)

// BenchmarkCallWakeups counts goroutine wake-ups per call through a real sentinel and math
// agent, all in this process (client node → sentinel → agent node and back, open profile).
//
// Method (package loadgen/internal/wakeups): runtime/trace records every goroutine state
// transition while b.N calls run; every Waiting → Runnable transition is one wake-up.
// Creations are counted apart, and each wake-up is attributed to where the woken goroutine had
// blocked, printed with -v. The trace itself costs time, so this benchmark's ns/op is not a
// latency figure; only the counts are.
//
//	go test -run '^$' -bench CallWakeups -benchtime 2000x -v ./loadgen/
func BenchmarkCallWakeups(b *testing.B) {
	for _, callers := range []int{1, 50} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			url := startFabric(b)
			tg := dial(b, url, "add", 1, 0)
			ctx := context.Background()
			for range 200 { // warm the connections and pools outside the trace
				if err := tg.Call(ctx, 0); err != nil {
					b.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if err := trace.Start(&buf); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			calls := runCalls(b, tg, callers, b.N)
			b.StopTimer()
			trace.Stop()
			st, err := wakeups.Count(&buf)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Wakeups)/float64(calls), "wakeups/call")
			b.ReportMetric(float64(st.Created)/float64(calls), "goroutines-created/call")
			if calls < 100 {
				return // the testing package's probe run: too few calls to be worth printing
			}
			b.Logf("%d calls, %d callers: %.2f wake-ups/call, %.2f goroutines created/call; woken where they had blocked:\n%s",
				calls, callers, float64(st.Wakeups)/float64(calls), float64(st.Created)/float64(calls), st.Top(calls, 12))
		})
	}
}

// runCalls makes n calls spread over callers goroutines and returns n.
func runCalls(b *testing.B, tg *NodeTarget, callers, n int) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	per := n / callers
	rest := n % callers
	for w := range callers {
		k := per
		if w < rest {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range k {
				if err := tg.Call(context.Background(), w); err != nil {
					mu.Lock()
					firstErr = cmp(firstErr, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return n
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
