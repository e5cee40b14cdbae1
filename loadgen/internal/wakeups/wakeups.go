// Package wakeups counts goroutine wake-ups in a runtime/trace recording, for the benchmarks
// that report wake-ups per call (loadgen's BenchmarkCallWakeups, the ceiling's). Only tests
// import it, so the fame binary does not carry the trace parser.
//
// Method: record with runtime/trace around the calls, then Count the stream with
// golang.org/x/exp/trace. Every Waiting → Runnable goroutine transition is one wake-up; it is
// attributed to where the woken goroutine blocked. runtime/metrics has no wake-up counter and
// GODEBUG=schedtrace only samples the run queues, so the trace is the one exact source.
package wakeups

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	xtrace "golang.org/x/exp/trace"
)

// Stats counts goroutine state transitions in a trace.
type Stats struct {
	// Wakeups is the number of Waiting → Runnable transitions: a goroutine blocked on a
	// channel, lock, select, network read or timer made runnable again (GoUnblock, including
	// the netpoller's).
	Wakeups int
	// Created is the number of NotExist → Runnable transitions (goroutines started).
	Created int
	// BySite splits Wakeups by where the woken goroutine had blocked: block reason and the
	// first fame-go frame of its stack (else the first frame outside the runtime).
	BySite map[string]int
}

// Top lists the n most frequent blocking sites, each as wake-ups per call.
func (s Stats) Top(calls, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range s.BySite {
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

// Count parses a runtime/trace stream: Waiting → Runnable goroutine transitions are wake-ups,
// attributed to where the goroutine blocked (its last Running → Waiting transition).
func Count(r io.Reader) (Stats, error) {
	tr, err := xtrace.NewReader(r)
	if err != nil {
		return Stats{}, fmt.Errorf("trace reader: %w", err)
	}
	st := Stats{BySite: map[string]int{}}
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
			st.Wakeups++
			site, ok := blockedAt[g]
			if !ok {
				site = "(blocked before the trace started)"
			}
			st.BySite[site]++
		case from == xtrace.GoNotExist && to == xtrace.GoRunnable:
			st.Created++
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
