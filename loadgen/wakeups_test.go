package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"testing"

	xtrace "golang.org/x/exp/trace"
)

// BenchmarkCallWakeups counts goroutine wake-ups per call through a real sentinel and math
// agent, all in this process (client node → sentinel → agent node and back, open profile).
//
// Method: runtime/trace records every goroutine state transition while b.N calls run; the
// trace is parsed with golang.org/x/exp/trace and every Waiting → Runnable transition is one
// wake-up (a goroutine blocked on a channel, lock, select, network read or timer made
// runnable again: GoUnblock, including netpoller wake-ups). Creations (NotExist → Runnable)
// are counted apart. Each wake-up is attributed to where the woken goroutine had blocked
// (block reason and first fame-go frame of its stack), printed with -v. The trace itself
// costs time, so this benchmark's ns/op is not a latency figure; only the counts are.
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
			st, err := countWakeups(&buf)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.wakeups)/float64(calls), "wakeups/call")
			b.ReportMetric(float64(st.created)/float64(calls), "goroutines-created/call")
			if calls < 100 {
				return // the testing package's probe run: too few calls to be worth printing
			}
			b.Logf("%d calls, %d callers: %.2f wake-ups/call, %.2f goroutines created/call; woken where they had blocked:\n%s",
				calls, callers, float64(st.wakeups)/float64(calls), float64(st.created)/float64(calls), st.top(calls, 12))
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

type wakeStats struct {
	wakeups, created int
	bySite           map[string]int
}

func (s wakeStats) top(calls, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range s.bySite {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int { return b.v - a.v })
	var sb strings.Builder
	for i, e := range all {
		if i == n {
			break
		}
		fmt.Fprintf(&sb, "  %6.2f/call  %s\n", float64(e.v)/float64(calls), e.k)
	}
	return sb.String()
}

// countWakeups parses a runtime/trace stream: Waiting → Runnable goroutine transitions are
// wake-ups, attributed to where the goroutine blocked (its last Running → Waiting transition).
func countWakeups(r io.Reader) (wakeStats, error) {
	tr, err := xtrace.NewReader(r)
	if err != nil {
		return wakeStats{}, fmt.Errorf("trace reader: %w", err)
	}
	st := wakeStats{bySite: map[string]int{}}
	blockedAt := map[xtrace.GoID]string{}
	for {
		ev, err := tr.ReadEvent()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("trace: %w", err)
		}
		if ev.Kind() != xtrace.EventStateTransition {
			continue
		}
		tr := ev.StateTransition()
		if tr.Resource.Kind != xtrace.ResourceGoroutine {
			continue
		}
		from, to := tr.Goroutine()
		g := tr.Resource.Goroutine()
		switch {
		case to == xtrace.GoWaiting:
			blockedAt[g] = tr.Reason + " @ " + siteOf(tr.Stack)
		case from == xtrace.GoWaiting && to == xtrace.GoRunnable:
			st.wakeups++
			site, ok := blockedAt[g]
			if !ok {
				site = "(blocked before the trace started)"
			}
			st.bySite[site]++
		case from == xtrace.GoNotExist && to == xtrace.GoRunnable:
			st.created++
		}
	}
}

// siteOf names a blocking site: the first fame-go frame, else the first frame outside the
// runtime.
func siteOf(s xtrace.Stack) string {
	var first string
	for f := range s.Frames() {
		if strings.HasPrefix(f.Func, "github.com/fame-go/fame/") {
			return strings.TrimPrefix(f.Func, "github.com/fame-go/fame/")
		}
		if first == "" && !strings.HasPrefix(f.Func, "runtime.") && !strings.HasPrefix(f.Func, "internal/") {
			first = f.Func
		}
	}
	if first == "" {
		return "(runtime)"
	}
	return first
}
