package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// CallFunc makes one call and reports how it ended. worker identifies the caller (0..Callers-1)
// so a target can spread callers over connections. It must return when ctx ends.
type CallFunc func(ctx context.Context, worker int) error

// Options describe one load run.
type Options struct {
	// Callers is the number of concurrent callers: in closed loop each calls back to back; in
	// open loop it caps the calls in flight. Must be >= 1.
	Callers int
	// Rate is the total calls per second for open loop; 0 selects closed loop.
	Rate float64
	// Warmup is run first and not recorded; Duration is the measured window after it.
	Warmup   time.Duration
	Duration time.Duration
	// CallTimeout bounds each call (0: no bound beyond the run's context). Calls still in
	// flight when the window closes are waited for, so it also bounds the drain.
	CallTimeout time.Duration
	// CPU names processes (name -> pid, 0 = this process) whose CPU time (user + system,
	// from /proc) is read when the window opens and after the last call has drained; the
	// Result reports it in total and per successful call. Empty: no CPU figures.
	CPU map[string]int
}

// ErrOptions marks invalid Options.
var ErrOptions = errors.New("loadgen: invalid options")

func (o Options) validate() error {
	switch {
	case o.Callers < 1:
		return fmt.Errorf("%w: callers must be >= 1, got %d", ErrOptions, o.Callers)
	case o.Rate < 0:
		return fmt.Errorf("%w: rate must be >= 0, got %g", ErrOptions, o.Rate)
	case o.Duration <= 0:
		return fmt.Errorf("%w: duration must be > 0, got %s", ErrOptions, o.Duration)
	case o.Warmup < 0:
		return fmt.Errorf("%w: warm-up must be >= 0, got %s", ErrOptions, o.Warmup)
	case o.CallTimeout < 0:
		return fmt.Errorf("%w: call timeout must be >= 0, got %s", ErrOptions, o.CallTimeout)
	}
	return nil
}

// Run drives call under opts until the warm-up and the window are over (or ctx ends) and
// returns what was measured in the window. It waits for every call it started.
func Run(ctx context.Context, opts Options, call CallFunc) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	r := &run{opts: opts, call: call, start: time.Now()}
	r.measureFrom = r.start.Add(opts.Warmup)
	r.end = r.measureFrom.Add(opts.Duration)
	if opts.Rate > 0 {
		r.interval = float64(time.Second) / opts.Rate
	}
	rec := make([]*recorder, opts.Callers)
	var wg sync.WaitGroup
	for w := range rec {
		rec[w] = newRecorder(r.measureFrom, opts.Duration)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if opts.Rate > 0 {
				r.openLoop(ctx, w, rec[w])
			} else {
				r.closedLoop(ctx, w, rec[w])
			}
		}()
	}
	// The CPU sampler's goroutine waits for the window to open (or ctx to end) and is joined
	// before Run returns.
	var cpu *cpuSampler
	var cpuBegun chan struct{}
	if len(opts.CPU) > 0 {
		cpu = newCPUSampler(opts.CPU)
		cpuBegun = make(chan struct{})
		go func() {
			defer close(cpuBegun)
			t := time.NewTimer(time.Until(r.measureFrom))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			cpu.begin()
		}()
	}
	wg.Wait()
	if cpu != nil {
		<-cpuBegun
		cpu.finish()
	}
	res := newResult(opts, r.start, time.Now())
	for _, x := range rec {
		res.add(x)
	}
	if cpu != nil {
		res.CPU, res.CPUErrors = cpu.used, cpu.errs
	}
	return res, nil
}

type run struct {
	opts        Options
	call        CallFunc
	start       time.Time
	measureFrom time.Time
	end         time.Time
	interval    float64      // open loop: nanoseconds between due times
	next        atomic.Int64 // open loop: index of the next unclaimed call
}

func (r *run) closedLoop(ctx context.Context, w int, rec *recorder) {
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(r.end) {
			return
		}
		err := r.once(ctx, w)
		rec.record(t0, time.Now(), err)
	}
}

// openLoop claims due slots in order. A worker that is late sends at once: the lateness is
// part of the call's latency because it is measured from the due time.
func (r *run) openLoop(ctx context.Context, w int, rec *recorder) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		i := r.next.Add(1) - 1
		due := r.start.Add(time.Duration(float64(i) * r.interval))
		if !due.Before(r.end) {
			return
		}
		if !time.Now().Before(r.end) {
			// Every caller was busy until the window closed: this call was due but never
			// sent. Count it rather than send it late, so the drain stays bounded.
			if !due.Before(r.measureFrom) {
				rec.unsent++
			}
			continue
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		rec.lag(due, time.Now())
		err := r.once(ctx, w)
		rec.record(due, time.Now(), err)
	}
}

func (r *run) once(ctx context.Context, w int) error {
	if r.opts.CallTimeout <= 0 {
		return r.call(ctx, w)
	}
	cctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	return r.call(cctx, w)
}

// recorder is one worker's private tally, merged into the Result when the run ends.
type recorder struct {
	from      time.Time
	hist      *Histogram
	errors    map[string]int64
	perSecond []int64
	unsent    int64
	sendLag   *Histogram // open loop: how late each call went out
}

func newRecorder(from time.Time, window time.Duration) *recorder {
	secs := int((window + time.Second - 1) / time.Second)
	return &recorder{from: from, hist: NewHistogram(), sendLag: NewHistogram(), errors: map[string]int64{}, perSecond: make([]int64, secs)}
}

// lag notes how long after its due time an open-loop call was sent: timer wake-up delay of
// the generator itself plus any backlog. It is part of the latency; reporting it separately
// tells the two apart.
func (x *recorder) lag(due, sent time.Time) {
	if !due.Before(x.from) {
		x.sendLag.Record(sent.Sub(due))
	}
}

// record files a call that started (or was due) at t0 and ended at t1; calls from the warm-up
// are dropped.
func (x *recorder) record(t0, t1 time.Time, err error) {
	if t0.Before(x.from) {
		return
	}
	if err != nil {
		x.errors[Classify(err)]++
		return
	}
	x.hist.Record(t1.Sub(t0))
	if s := int(t1.Sub(x.from) / time.Second); s >= 0 && s < len(x.perSecond) {
		x.perSecond[s]++
	}
}
