package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// gatedReplica attaches a replica whose "gate" operation holds each call until release closes.
// handlers > 0 sets how many calls it may hold at once (and queue).
func gatedReplica(t *testing.T, f *fabric, id string, handlers int, started chan<- struct{}, release <-chan struct{}) {
	t.Helper()
	cfg := f.nodeConfig("fame.fabric")
	cfg.SystemID = id
	cfg.Delivery = node.AtLeastOnce
	if handlers > 0 {
		cfg.MaxHandlers, cfg.HandlerQueue = handlers, handlers
	}
	rep := f.connect(cfg)
	ops := mathagent.Ops(id)
	ops["gate"] = node.Unary(func(ctx context.Context, _ json.RawMessage) (any, error) {
		started <- struct{}{}
		select {
		case <-release:
			return "passed", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rep.Serve(ctx, mathagent.Address, ops); err != nil {
		t.Fatal(err)
	}
}

// TestDrainSIGTERMTimeout: calls still in flight at drain_timeout are nacked DRAINING (their
// callers do not wait for their own timeout), and the process exits 0.
func TestDrainSIGTERMTimeout(t *testing.T) {
	const callers = 5
	p := startSentinelProc(t, map[string]string{"FAME_DRAIN_TIMEOUT": "300ms"})
	started := make(chan struct{}, callers)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	gatedReplica(t, p.fabric, "drain-gated", 0, started, release)
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		c := p.nodeConfig()
		c.Delivery = node.AtLeastOnce
		c.CallTimeout = 60 * time.Second
		n := p.connect(c)
		go func() {
			var out string
			errs <- n.Call(context.Background(), mathagent.Address, "gate", map[string]any{}, &out)
		}()
	}
	for i := 0; i < callers; i++ {
		<-started
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < callers; i++ {
		err := <-errs
		var ne *node.NackError
		if !errors.As(err, &ne) || ne.Code != "DRAINING" || !strings.Contains(ne.Reason, "timeout") {
			t.Fatalf("call abandoned at the drain timeout: %v, want a DRAINING nack naming the timeout", err)
		}
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the sentinel did not exit after the drain timeout")
	}
	if p.err != nil {
		t.Fatalf("sentinel exit: %v, want 0", p.err)
	}
	if out := p.out.String(); !strings.Contains(out, "result=timeout") || !strings.Contains(out, "abandoned=5") {
		t.Fatalf("sentinel log lacks the timeout result and abandoned=5:\n%s", out)
	}
}

// TestDrainSecondSignal: a second signal during a drain stops the sentinel at once (exit 0),
// for an operator who does not want to wait for drain_timeout.
func TestDrainSecondSignal(t *testing.T) {
	p := startSentinelProc(t, map[string]string{"FAME_DRAIN_TIMEOUT": "10m"})
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	gatedReplica(t, p.fabric, "drain-gated", 0, started, release)
	c := p.connect(p.nodeConfig())
	go func() {
		var out string
		_ = c.Call(context.Background(), mathagent.Address, "gate", map[string]any{}, &out)
	}()
	<-started
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the drain to start", func() bool {
		return strings.Contains(p.out.String(), "signal received: draining")
	})
	select {
	case <-p.exited:
		t.Fatalf("exited during a drain with a call in flight: %v", p.err)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("a second signal did not stop the sentinel")
	}
	if p.err != nil {
		t.Fatalf("sentinel exit: %v, want 0", p.err)
	}
	if !strings.Contains(p.out.String(), "second signal") {
		t.Fatalf("sentinel log lacks the second-signal line:\n%s", p.out.String())
	}
}
