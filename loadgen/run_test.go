package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// sleepCall is a fake service taking d per call.
func sleepCall(d time.Duration) CallFunc {
	return func(ctx context.Context, _ int) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestOpenLoopKeepsItsRate(t *testing.T) {
	// 16 callers at 1 ms per call can serve 16,000 calls/s, so 2,000/s must be delivered on
	// schedule: about 2,000 calls in the 1 s window, none left unsent.
	const rate = 2000
	res, err := Run(context.Background(), Options{Callers: 16, Rate: rate, Warmup: 200 * time.Millisecond, Duration: time.Second}, sleepCall(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Calls(); got < rate*0.9 || got > rate*1.02 {
		t.Fatalf("open loop at %d/s made %d calls in 1 s", rate, got)
	}
	if res.Unsent != 0 || res.ErrorCount() != 0 {
		t.Fatalf("unsent %d, errors %v", res.Unsent, res.Errors)
	}
	// Scheduled calls go out on time: the median latency is close to the service time.
	if p50 := res.Latency.Percentile(50); p50 < time.Millisecond || p50 > 20*time.Millisecond {
		t.Fatalf("p50 %v, want about 1 ms", p50)
	}
	if res.SendLag.Count() != uint64(res.Calls()) {
		t.Fatalf("send lag recorded for %d calls, want %d", res.SendLag.Count(), res.Calls())
	}
}

func TestOpenLoopMeasuresFromDueTime(t *testing.T) {
	// 2 callers at 20 ms serve 100 calls/s; 500/s offered. A closed-loop tool would report
	// 20 ms; measured from the due time the backlog shows, and the undelivered load is counted.
	res, err := Run(context.Background(), Options{Callers: 2, Rate: 500, Duration: 500 * time.Millisecond}, sleepCall(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if p50 := res.Latency.Percentile(50); p50 < 80*time.Millisecond {
		t.Fatalf("p50 %v hides the backlog (service time is 20 ms)", p50)
	}
	if max := res.Latency.Max(); max < 250*time.Millisecond {
		t.Fatalf("max %v: the last calls sent were due long before", max)
	}
	if lag := res.SendLag.Percentile(50); lag < 60*time.Millisecond {
		t.Fatalf("send lag p50 %v: the backlog is not visible", lag)
	}
	if res.Unsent < 100 {
		t.Fatalf("unsent %d, want most of the 250 due calls", res.Unsent)
	}
	if sent := res.Calls() + res.Unsent; sent < 240 || sent > 252 {
		t.Fatalf("sent+unsent = %d, want the 250 due in the window", sent)
	}
	// The drain is bounded: callers stop taking slots when the window closes.
	if res.Elapsed > time.Second {
		t.Fatalf("run took %v after warm-up", res.Elapsed)
	}
}

func TestClosedLoopCallsBackToBack(t *testing.T) {
	var inFlight, peak atomic.Int32
	call := func(ctx context.Context, _ int) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	res, err := Run(context.Background(), Options{Callers: 4, Duration: 500 * time.Millisecond}, call)
	if err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 4 {
		t.Fatalf("peak concurrency %d, want 4", peak.Load())
	}
	// 4 callers × 500 ms / 2 ms = 1000 at most.
	if got := res.Calls(); got < 300 || got > 1000 {
		t.Fatalf("%d calls, want up to 1000", got)
	}
	if p50 := res.Latency.Percentile(50); p50 < 2*time.Millisecond {
		t.Fatalf("p50 %v below the 2 ms service time", p50)
	}
	if res.SendLag.Count() != 0 {
		t.Fatalf("closed loop recorded %d send lags", res.SendLag.Count())
	}
}

func TestWarmupNotRecorded(t *testing.T) {
	for _, rate := range []float64{0, 1000} {
		t.Run(fmt.Sprintf("rate=%g", rate), func(t *testing.T) {
			warm := 150 * time.Millisecond
			measureFrom := time.Now().Add(warm) // never later than Run's own
			var warmCalls atomic.Int64
			call := func(ctx context.Context, _ int) error {
				if time.Now().Before(measureFrom) {
					warmCalls.Add(1)
					return errors.New("warm-up call")
				}
				return nil
			}
			res, err := Run(context.Background(), Options{Callers: 3, Rate: rate, Warmup: warm, Duration: 200 * time.Millisecond}, call)
			if err != nil {
				t.Fatal(err)
			}
			if warmCalls.Load() == 0 {
				t.Fatal("no call was made during the warm-up")
			}
			if res.ErrorCount() != 0 || res.Calls() == 0 {
				t.Fatalf("recorded %d ok, errors %v: warm-up calls leaked in", res.Calls(), res.Errors)
			}
		})
	}
}

func TestErrorsCountedByKind(t *testing.T) {
	errs := []error{
		fmt.Errorf("wrapped: %w", &node.NackError{Code: "NO_ROUTE"}),
		&node.RemoteError{Code: -32602, Message: "bad"},
		fmt.Errorf("call: %w: %w", node.ErrTimeout, context.DeadlineExceeded),
		nil,
	}
	var i atomic.Int64
	call := func(ctx context.Context, _ int) error { return errs[(i.Add(1)-1)%int64(len(errs))] }
	res, err := Run(context.Background(), Options{Callers: 1, Duration: 50 * time.Millisecond}, call)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"nack:NO_ROUTE", "remote:-32602", KindTimeout} {
		if res.Errors[k] == 0 {
			t.Errorf("no %s counted: %v", k, res.Errors)
		}
	}
	if len(res.Errors) != 3 || res.Calls() == 0 {
		t.Fatalf("errors %v, calls %d", res.Errors, res.Calls())
	}
	if total := res.Calls() + res.ErrorCount(); res.Calls() < total/4-1 || res.Calls() > total/4+1 {
		t.Fatalf("%d ok of %d: want one in four", res.Calls(), total)
	}
}

func TestCallTimeoutApplied(t *testing.T) {
	res, err := Run(context.Background(), Options{Callers: 2, Duration: 100 * time.Millisecond, CallTimeout: 10 * time.Millisecond}, sleepCall(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors[KindTimeout] == 0 || res.Calls() != 0 {
		t.Fatalf("calls %d, errors %v: want only timeouts", res.Calls(), res.Errors)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	for _, rate := range []float64{0, 10} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t0 := time.Now()
		_, err := Run(ctx, Options{Callers: 2, Rate: rate, Duration: time.Hour}, sleepCall(time.Hour))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(t0); el > 5*time.Second {
			t.Fatalf("rate %g: Run returned %v after its context ended", rate, el)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := []Options{
		{Callers: 0, Duration: time.Second},
		{Callers: 1, Duration: 0},
		{Callers: 1, Duration: time.Second, Rate: -1},
		{Callers: 1, Duration: time.Second, Warmup: -1},
		{Callers: 1, Duration: time.Second, CallTimeout: -1},
	}
	for _, o := range bad {
		if _, err := Run(context.Background(), o, sleepCall(0)); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: err %v, want ErrOptions", o, err)
		}
	}
}

func TestStalled(t *testing.T) {
	tests := []struct {
		window    time.Duration
		perSecond []int64
		want      bool
	}{
		{3 * time.Second, []int64{10, 12, 9}, false},
		{3 * time.Second, []int64{10, 0, 9}, true},
		{3 * time.Second, []int64{0, 0, 0}, true},
		// A partial last second may be empty without meaning a stall.
		{2500 * time.Millisecond, []int64{10, 12, 0}, false},
	}
	for _, tc := range tests {
		r := &Result{Options: Options{Duration: tc.window}, PerSecond: tc.perSecond, Latency: NewHistogram()}
		if got := r.Stalled(); got != tc.want {
			t.Errorf("%v over %v: stalled %v, want %v", tc.perSecond, tc.window, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&node.NackError{Code: "ROUTE_CONNECTOR_CLOSED"}, "nack:ROUTE_CONNECTOR_CLOSED"},
		{fmt.Errorf("x: %w", &node.RemoteError{Code: -32601}), "remote:-32601"},
		{fmt.Errorf("%w: deadline", node.ErrTimeout), KindTimeout},
		{context.DeadlineExceeded, KindTimeout},
		{node.ErrClosed, KindClosed},
		{context.Canceled, KindCancelled},
		{fmt.Errorf("%w: 8", ErrBadResult), KindBadResult},
		{errors.New("boom"), KindOther},
	}
	for _, tc := range tests {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
