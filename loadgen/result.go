package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Result is what one Run measured in its window (warm-up excluded).
type Result struct {
	Options Options
	// Elapsed is the wall time from the end of the warm-up until the last call returned; it
	// exceeds Options.Duration by the drain of calls still in flight when the window closed.
	Elapsed time.Duration
	// Latency holds successful calls only: from send (closed loop) or due time (open loop)
	// until the reply.
	Latency *Histogram
	// SendLag (open loop) is how late each call was sent after its due time; it is included
	// in Latency.
	SendLag *Histogram
	// Errors counts failed calls by kind (see Classify).
	Errors map[string]int64
	// PerSecond counts successful calls by the second of the window they completed in.
	PerSecond []int64
	// Unsent (open loop) counts calls due in the window that were never sent because every
	// caller was still busy when the window closed: the offered load was not delivered.
	Unsent int64
	// CPU is the CPU time each process of Options.CPU used from the opening of the window
	// until the last call drained; CPUErrors says why a process has no figure.
	CPU       map[string]time.Duration
	CPUErrors map[string]error
}

// CPUPerCall is CPU[name] divided by the successful calls of the window (0 when either is
// missing).
func (r *Result) CPUPerCall(name string) time.Duration {
	v, ok := r.CPU[name]
	if !ok || r.Calls() == 0 {
		return 0
	}
	return v / time.Duration(r.Calls())
}

func newResult(opts Options, start, end time.Time) *Result {
	return &Result{
		Options:   opts,
		Elapsed:   max(0, end.Sub(start.Add(opts.Warmup))),
		Latency:   NewHistogram(),
		SendLag:   NewHistogram(),
		Errors:    map[string]int64{},
		PerSecond: make([]int64, int((opts.Duration+time.Second-1)/time.Second)),
	}
}

func (r *Result) add(x *recorder) {
	r.Latency.Merge(x.hist)
	r.SendLag.Merge(x.sendLag)
	for k, v := range x.errors {
		r.Errors[k] += v
	}
	for i, v := range x.perSecond {
		r.PerSecond[i] += v
	}
	r.Unsent += x.unsent
}

// Calls is the number of successful calls in the window.
func (r *Result) Calls() int64 { return int64(r.Latency.Count()) }

// ErrorCount is the number of failed calls in the window.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// Throughput is successful calls per second of the window.
func (r *Result) Throughput() float64 {
	return float64(r.Calls()) / r.Options.Duration.Seconds()
}

// Stalled reports a whole second of the window in which no call succeeded: a deadlock or a
// collapse, as opposed to a merely slow system.
func (r *Result) Stalled() bool {
	full := int(r.Options.Duration / time.Second)
	for i := 0; i < full && i < len(r.PerSecond); i++ {
		if r.PerSecond[i] == 0 {
			return true
		}
	}
	return false
}

// Summary is the machine-readable form of a Result (`fame bench -json`); latencies are in
// microseconds.
type Summary struct {
	Mode        string           `json:"mode"` // "closed" or "open"
	Callers     int              `json:"callers"`
	Rate        float64          `json:"rate,omitempty"`
	DurationS   float64          `json:"duration_s"`
	WarmupS     float64          `json:"warmup_s"`
	Calls       int64            `json:"calls"`
	CallsPerSec float64          `json:"calls_per_sec"`
	P50us       float64          `json:"p50_us"`
	P90us       float64          `json:"p90_us"`
	P99us       float64          `json:"p99_us"`
	P999us      float64          `json:"p999_us"`
	MaxUs       float64          `json:"max_us"`
	MeanUs      float64          `json:"mean_us"`
	LagP50us    float64          `json:"send_lag_p50_us,omitempty"`
	LagP99us    float64          `json:"send_lag_p99_us,omitempty"`
	ErrorTotal  int64            `json:"error_total"`
	Errors      map[string]int64 `json:"errors"`
	Unsent      int64            `json:"unsent,omitempty"`
	Stalled     bool             `json:"stalled"`
	PerSecond   []int64          `json:"per_second"`
	// CPUs is each measured process's CPU time over the window in seconds; CPUusPerCall the
	// same divided by the successful calls (see Options.CPU).
	CPUs         map[string]float64 `json:"cpu_s,omitempty"`
	CPUusPerCall map[string]float64 `json:"cpu_us_per_call,omitempty"`
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// Summary condenses the result.
func (r *Result) Summary() Summary {
	mode := "closed"
	if r.Options.Rate > 0 {
		mode = "open"
	}
	h := r.Latency
	var cpuS, cpuPer map[string]float64
	if len(r.CPU) > 0 {
		cpuS, cpuPer = map[string]float64{}, map[string]float64{}
		for name, v := range r.CPU {
			cpuS[name] = v.Seconds()
			if n := r.Calls(); n > 0 {
				cpuPer[name] = float64(v.Nanoseconds()) / 1e3 / float64(n)
			}
		}
	}
	return Summary{
		CPUs: cpuS, CPUusPerCall: cpuPer,
		Mode: mode, Callers: r.Options.Callers, Rate: r.Options.Rate,
		DurationS: r.Options.Duration.Seconds(), WarmupS: r.Options.Warmup.Seconds(),
		Calls: r.Calls(), CallsPerSec: r.Throughput(),
		P50us: us(h.Percentile(50)), P90us: us(h.Percentile(90)), P99us: us(h.Percentile(99)),
		P999us: us(h.Percentile(99.9)), MaxUs: us(h.Max()), MeanUs: us(h.Mean()),
		LagP50us: us(r.SendLag.Percentile(50)), LagP99us: us(r.SendLag.Percentile(99)),
		ErrorTotal: r.ErrorCount(), Errors: r.Errors, Unsent: r.Unsent, Stalled: r.Stalled(), PerSecond: r.PerSecond,
	}
}

// WriteText prints the human-readable block `fame bench` shows.
func (r *Result) WriteText(w io.Writer, title string) error {
	o := r.Options
	h := r.Latency
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", title)
	if o.Rate > 0 {
		fmt.Fprintf(&b, "  load      open loop, %g calls/s offered, at most %d in flight\n", o.Rate, o.Callers)
	} else {
		fmt.Fprintf(&b, "  load      closed loop, %d caller(s) back to back\n", o.Callers)
	}
	fmt.Fprintf(&b, "  window    %s after %s warm-up (drained in %s)\n", o.Duration, o.Warmup, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "  calls     %d ok, %.1f calls/s\n", r.Calls(), r.Throughput())
	fmt.Fprintf(&b, "  latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, min %s)\n",
		fmtDur(h.Percentile(50)), fmtDur(h.Percentile(90)), fmtDur(h.Percentile(99)),
		fmtDur(h.Percentile(99.9)), fmtDur(h.Max()), fmtDur(h.Mean()), fmtDur(h.Min()))
	if o.Rate > 0 {
		fmt.Fprintf(&b, "  send lag  p50 %s  p99 %s  (sent after the due time: generator wake-up + backlog; part of the latency)\n",
			fmtDur(r.SendLag.Percentile(50)), fmtDur(r.SendLag.Percentile(99)))
	}
	fmt.Fprintf(&b, "  errors    %s\n", r.errorText())
	if len(r.CPU) > 0 || len(r.CPUErrors) > 0 {
		b.WriteString(r.cpuText())
	}
	if r.Unsent > 0 {
		fmt.Fprintf(&b, "  unsent    %d calls due in the window were never sent (all %d callers busy)\n", r.Unsent, o.Callers)
	}
	if r.Stalled() {
		fmt.Fprintf(&b, "  STALLED   no call completed in at least one whole second: %v\n", r.PerSecond)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Result) errorText() string {
	if len(r.Errors) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(r.Errors))
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Errors[k]))
	}
	return strings.Join(parts, " ")
}

// fmtDur prints with 3 significant digits in the unit that suits the value.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", us(d))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// cpuText is the "cpu/call" line: each process's CPU per successful call, then the sum.
func (r *Result) cpuText() string {
	var b strings.Builder
	b.WriteString("  cpu/call ")
	var total time.Duration
	for _, name := range slices.Sorted(maps.Keys(r.CPU)) {
		per := r.CPUPerCall(name)
		total += per
		fmt.Fprintf(&b, " %s %s (%.2fs);", name, fmtDur(per), r.CPU[name].Seconds())
	}
	if len(r.CPU) > 1 {
		fmt.Fprintf(&b, " total %s;", fmtDur(total))
	}
	for _, name := range slices.Sorted(maps.Keys(r.CPUErrors)) {
		fmt.Fprintf(&b, " %s: %v;", name, r.CPUErrors[name])
	}
	return strings.TrimSuffix(b.String(), ";") + "  (utime+stime from /proc over the window)\n"
}
