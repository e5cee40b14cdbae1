package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/internal/syncbuf"
	"github.com/fame-go/fame/node"
)

// sentinelProc is `fame sentinel` as a process of its own (a real SIGTERM needs one), with a
// fabric value pointing at it so that the harness helpers (nodeConfig, connect, dialRaw,
// metric) work against it.
type sentinelProc struct {
	*fabric
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// startFameSentinel starts `fame sentinel` (built once, goBinary) with args (on top of
// -addr-file) on a free loopback port (unless args or env say otherwise) with env on top of
// this process's environment, returning it once it listens.
func startFameSentinel(t *testing.T, env map[string]string, args ...string) *sentinelProc {
	t.Helper()
	bin := goBinary(t, "github.com/fame-go/fame/cmd/fame")
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(bin, append([]string{"sentinel", "-addr-file", addrFile}, args...)...)
	cmd.Env = append(os.Environ(), "FAME_LISTENER_HOST=127.0.0.1", "FAME_LISTENER_PORT=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &sentinelProc{cmd: cmd, out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Owned by the test: ends when the process exits (killed at cleanup at the latest).
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("sentinel output:\n%s", p.out.String())
		}
	})
	var addr string
	waitUntil(t, 20*time.Second, "the sentinel's address file", func() bool {
		b, err := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	p.fabric = &fabric{t: t, env: env, addr: addr, logs: p.out, stop: func() {}}
	return p
}

// startSentinelProc is startFameSentinel with no arguments (the built-in defaults and env).
func startSentinelProc(t *testing.T, env map[string]string) *sentinelProc {
	t.Helper()
	return startFameSentinel(t, env)
}

// TestDrainSIGTERM is the check of issue #16 part 1: SIGTERM to a real `fame sentinel`
// process under 50 at-least-once SDK callers. Every call that reached the sentinel before the
// signal is answered, every call after it is nacked DRAINING at once (none times out), the
// HTTP endpoints answer during the drain (/readyz 503, /healthz 200), and the process exits 0
// once nothing is in flight.
func TestDrainSIGTERM(t *testing.T) {
	const callers = 50
	p := startSentinelProc(t, map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken, "FAME_DRAIN_TIMEOUT": "60s",
		"FAME_DELIVERY_PROFILE": node.AtLeastOnce})
	f := p.fabric

	// One replica whose "gate" operation holds every call until the test releases it, so that
	// all 50 calls are provably in flight (they reached the replica) when the signal goes.
	started := make(chan struct{}, 2*callers)
	release := make(chan struct{})
	gatedReplica(t, f, "drain-replica", 2*callers, started, release)

	nodes := make([]*node.Node, callers)
	for i := range nodes {
		c := f.nodeConfig()
		c.Delivery = node.AtLeastOnce
		c.CallTimeout = 60 * time.Second // a timeout would be a failure, not a slow pass
		nodes[i] = f.connect(c)
	}

	type result struct {
		reply string
		err   error
		took  time.Duration
	}
	before := make(chan result, callers)
	for _, n := range nodes {
		go func() {
			var r result
			t0 := time.Now()
			r.err = n.Call(context.Background(), mathagent.Address, "gate", map[string]any{}, &r.reply)
			r.took = time.Since(t0)
			before <- r
		}()
	}
	for i := 0; i < callers; i++ {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d calls reached the replica", i, callers)
		}
	}

	sig := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "/readyz 503 after SIGTERM", func() bool {
		return httpStatus(t, f, http.MethodGet, "/readyz", "") == http.StatusServiceUnavailable
	})
	readyAfter := time.Since(sig)
	if got := httpStatus(t, f, http.MethodGet, "/healthz", ""); got != http.StatusOK {
		t.Fatalf("/healthz during the drain: %d, want 200", got)
	}

	// Every call after the signal: nacked DRAINING, at once.
	var wg sync.WaitGroup
	after := make([]result, callers)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			var out int
			after[i].err = n.Call(context.Background(), mathagent.Address, "add", map[string]any{"x": 1, "y": 2}, &out)
			after[i].took = time.Since(t0)
		}()
	}
	wg.Wait()
	var slowestNack time.Duration
	for i, r := range after {
		var ne *node.NackError
		if !errors.As(r.err, &ne) || ne.Code != "DRAINING" {
			t.Fatalf("call %d after SIGTERM: %v, want a DRAINING nack", i, r.err)
		}
		slowestNack = max(slowestNack, r.took)
	}
	if got := f.metric(t, "fame_drain_refusals_total", `reason="new_call"`); got != callers {
		t.Fatalf("fame_drain_refusals_total{new_call} = %v, want %d", got, callers)
	}
	if got := f.metric(t, "fame_drain_in_flight"); got != callers {
		t.Fatalf("fame_drain_in_flight = %v, want %d", got, callers)
	}
	select {
	case <-p.exited:
		t.Fatalf("the sentinel exited with %d calls in flight: %v", callers, p.err)
	default:
	}

	// Release the calls in flight: every one is answered, then the process exits 0.
	close(release)
	for i := 0; i < callers; i++ {
		r := <-before
		if r.err != nil || r.reply != "passed" {
			t.Fatalf("call in flight at SIGTERM: reply %q, err %v; want its reply", r.reply, r.err)
		}
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the sentinel did not exit after the drain")
	}
	exitAfter := time.Since(sig)
	if p.err != nil {
		t.Fatalf("sentinel exit: %v, want 0", p.err)
	}
	out := p.out.String()
	for _, want := range []string{"signal received: draining", "drain finished", "result=idle"} {
		if !strings.Contains(out, want) {
			t.Fatalf("sentinel log lacks %q:\n%s", want, out)
		}
	}
	t.Logf("drain figures: /readyz 503 %v after SIGTERM; %d post-signal calls nacked DRAINING, slowest %v; exit 0 %v after SIGTERM (calls held by the test until released)",
		readyAfter, callers, slowestNack, exitAfter)
}
