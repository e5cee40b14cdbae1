package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"
)

// Fault kinds.
const (
	FaultReplicaKill  = "replica_kill9"   // kill -9 of a replica, restarted after Hold
	FaultReplicaStop  = "replica_sigstop" // SIGSTOP of a replica for Hold, then SIGCONT
	FaultSentinelKill = "sentinel_kill9"  // kill -9 of the sentinel, restarted at once on the same store
	FaultDrainAdmin   = "replica_drain_admin"
	FaultDrainSIGTERM = "replica_drain_sigterm"
	FaultSlowReader   = "slow_reader" // the slow-reading client reads ~5 KB/s for Hold
)

// Fault is one planned and then executed fault.
type Fault struct {
	Kind    string `json:"kind"`
	Target  string `json:"target"` // replicaN, sentinel, or slow-client
	replica int    // index of the target replica
	// At is the planned offset from the start of the fault phase; Hold how long the fault
	// holds (SIGSTOP, slow reading, time down before a killed replica's restart).
	At   time.Duration `json:"-"`
	Hold time.Duration `json:"-"`
	// Filled in when it runs.
	Start     time.Time `json:"start"`
	Recovered time.Time `json:"recovered"` // the target serves again
	// Released is when a SIGSTOPped replica got its SIGCONT; Exited when a drained replica's
	// process ended.
	Released time.Time `json:"released,omitzero"`
	Exited   time.Time `json:"exited,omitzero"`
	HoldMS   int64     `json:"hold_ms"`
	Err      string    `json:"error,omitempty"`
}

// plan draws the fault schedule of a run from seed: faults one after another over window,
// each after a pause of 3–9 s from the previous one's recovery (planned offsets assume the
// holds; the runner keeps the order and the gaps). The same seed and window give the same plan.
func plan(seed uint64, window time.Duration, replicas int) []Fault {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type kind struct {
		name   string
		weight int
	}
	kinds := []kind{{FaultReplicaKill, 3}, {FaultReplicaStop, 3}, {FaultSentinelKill, 2}, {FaultDrainAdmin, 1},
		{FaultDrainSIGTERM, 1}, {FaultSlowReader, 1}}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	var out []Fault
	at := time.Duration(0)
	for {
		at += 3*time.Second + time.Duration(r.Int64N(int64(6*time.Second)))
		w := r.IntN(total)
		var k string
		for _, c := range kinds {
			if w < c.weight {
				k = c.name
				break
			}
			w -= c.weight
		}
		f := Fault{Kind: k, At: at}
		switch k {
		case FaultReplicaKill:
			f.replica = r.IntN(replicas)
			f.Hold = time.Second + time.Duration(r.Int64N(int64(2*time.Second)))
		case FaultReplicaStop:
			f.replica = r.IntN(replicas)
			f.Hold = time.Second + time.Duration(r.Int64N(int64(9*time.Second))) // 1–10 s
		case FaultDrainAdmin, FaultDrainSIGTERM:
			f.replica = r.IntN(replicas)
		case FaultSlowReader:
			f.Hold = 2*time.Second + time.Duration(r.Int64N(int64(10*time.Second)))
		}
		switch k {
		case FaultSentinelKill:
			f.Target = "sentinel"
		case FaultSlowReader:
			f.Target = "slow-client"
		default:
			f.Target = replicaName(f.replica)
		}
		if at+f.Hold > window {
			return out
		}
		at += f.Hold
		out = append(out, f)
	}
}

// inject runs one fault to its recovery: the target serves again when it returns.
func (s *stack) inject(ctx context.Context, f *Fault, proxy *slowProxy) error {
	f.Start = time.Now()
	f.HoldMS = f.Hold.Milliseconds()
	defer func() { f.Recovered = time.Now() }()
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	switch f.Kind {
	case FaultReplicaKill:
		in := s.replicas[f.replica].current()
		s.sampleOne(ctx, in) // its last sample, for its own lifetime's judgement
		if err := in.kill9("kill -9 (fault)"); err != nil {
			return err
		}
		if err := sleep(f.Hold); err != nil {
			return err
		}
		return s.startReplica(ctx, f.replica)
	case FaultReplicaStop:
		in := s.replicas[f.replica].current()
		if err := in.signal(syscall.SIGSTOP, ""); err != nil {
			return err
		}
		err := sleep(f.Hold)
		f.Released = time.Now()
		if cerr := in.signal(syscall.SIGCONT, ""); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		// Back once the sentinel lists it again (it may have been cut for missed heartbeats
		// and re-attached).
		return s.waitBound(ctx, f.replica, readyTimeout)
	case FaultSentinelKill:
		in := s.sentinel.current()
		s.sampleOne(ctx, in)
		if err := in.kill9("kill -9 (fault)"); err != nil {
			return err
		}
		if err := s.startSentinel(ctx); err != nil {
			return err
		}
		for i := range s.replicas {
			if err := s.waitBound(ctx, i, readyTimeout); err != nil {
				return err
			}
		}
		return nil
	case FaultDrainAdmin, FaultDrainSIGTERM:
		in := s.replicas[f.replica].current()
		s.sampleOne(ctx, in) // before the drain sheds its load
		if f.Kind == FaultDrainAdmin {
			if err := s.drainReplica(ctx, f.replica); err != nil {
				return err
			}
			in.mu.Lock()
			in.endHow = "drained (admin)"
			in.mu.Unlock()
		} else if err := in.signal(syscall.SIGTERM, "drained (SIGTERM)"); err != nil {
			return err
		}
		// The agent exits once the sentinel reports it drained, or after its drain timeout.
		select {
		case <-in.exited:
			f.Exited = time.Now()
		case <-time.After(30 * time.Second):
			_ = in.kill9("killed: the drain did not end in 30 s")
			return fmt.Errorf("chaos: %s did not exit within 30 s of its drain", f.Target)
		case <-ctx.Done():
			return ctx.Err()
		}
		return s.startReplica(ctx, f.replica)
	case FaultSlowReader:
		proxy.slow.Store(true)
		err := sleep(f.Hold)
		proxy.slow.Store(false)
		return err
	}
	return fmt.Errorf("chaos: unknown fault %q", f.Kind)
}
