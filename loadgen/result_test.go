package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// knownResult has 1000 latencies of 1..1000 µs (and, in open loop, send lags of 1..1000 ns),
// two timeouts and one NO_ROUTE nack.
func knownResult(rate float64) *Result {
	r := newResult(Options{Callers: 4, Rate: rate, Duration: 2 * time.Second, Warmup: time.Second}, time.Now(), time.Now())
	for i := 1; i <= 1000; i++ {
		r.Latency.Record(time.Duration(i) * time.Microsecond)
		if rate > 0 {
			r.SendLag.Record(time.Duration(i) * time.Nanosecond)
		}
	}
	r.Errors[KindTimeout] = 2
	r.Errors["nack:NO_ROUTE"] = 1
	r.PerSecond = []int64{600, 400}
	return r
}

func TestSummary(t *testing.T) {
	s := knownResult(0).Summary()
	near := func(name string, got, want float64) {
		t.Helper()
		if got < want*(1-maxRelErr) || got > want*(1+maxRelErr) {
			t.Errorf("%s = %g, want %g ±%.2f%%", name, got, want, maxRelErr*100)
		}
	}
	near("p50", s.P50us, 500)
	near("p90", s.P90us, 900)
	near("p99", s.P99us, 990)
	near("p99.9", s.P999us, 999)
	near("max", s.MaxUs, 1000)
	near("mean", s.MeanUs, 500.5)
	near("calls/s", s.CallsPerSec, 500)
	if s.Mode != "closed" || s.Calls != 1000 || s.ErrorTotal != 3 || s.Stalled || s.LagP50us != 0 {
		t.Errorf("summary %+v", s)
	}
	if open := knownResult(100).Summary(); open.Mode != "open" || open.LagP50us == 0 {
		t.Errorf("open summary mode %q lag %g", open.Mode, open.LagP50us)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"calls_per_sec", "p50_us", "p999_us", "errors", "stalled", "per_second"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}

func TestWriteText(t *testing.T) {
	tests := []struct {
		rate float64
		want []string
	}{
		{0, []string{"closed loop, 4 caller(s)", "1000 ok, 500.0 calls/s", "p50 500.", "nack:NO_ROUTE=1 timeout=2"}},
		{100, []string{"open loop, 100 calls/s offered, at most 4 in flight", "send lag  p50"}},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := knownResult(tc.rate).WriteText(&b, "title"); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("rate %g: output lacks %q:\n%s", tc.rate, w, b.String())
			}
		}
		if strings.Contains(b.String(), "STALLED") {
			t.Errorf("not stalled, but says so:\n%s", b.String())
		}
	}
}

func TestFmtDur(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{512, "512ns"},
		{123456, "123.5µs"},
		{4_560_000, "4.56ms"},
		{1_230_000_000, "1.23s"},
	}
	for _, tc := range tests {
		if got := fmtDur(tc.d); got != tc.want {
			t.Errorf("fmtDur(%d) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// BenchmarkRunOverhead is the generator's own cost per call (scheduling, timing, recording)
// with a call that does nothing.
func BenchmarkRunOverhead(b *testing.B) {
	b.ReportAllocs()
	var calls int64
	for b.Loop() {
		res, err := Run(context.Background(), Options{Callers: 4, Duration: 20 * time.Millisecond}, func(context.Context, int) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		calls += res.Calls()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(calls, 1)), "ns/call")
}
