package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/internal/syncbuf"
)

// agentProc is a math-agent process attached to a fabric.
type agentProc struct {
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	exited chan struct{}
	err    error
}

// startMathAgent starts bin (a built math-agent) as replica name of f's pool, with env on top,
// and waits for its READY.
func startMathAgent(t *testing.T, f *fabric, bin, name string, env map[string]string) *agentProc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "FAME_DIRECT_ADMISSION_URL="+f.url(), "FAME_NODE_ID="+name, "AGENT_NAME="+name)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &agentProc{cmd: cmd, out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.out
	// An os.Pipe of our own rather than StdoutPipe: cmd.Wait (on its own goroutine below)
	// closes a StdoutPipe, possibly while the scanner still reads it.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close() // the child holds its copy; EOF when it exits
	if err != nil {
		stdout.Close()
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if sc.Text() == "READY" {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("%s exited before READY: %v\n%s", name, p.err, p.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no READY\n%s", name, p.out.String())
	}
	return p
}

// TestReplicaDrainSIGTERM: SIGTERM to a math-agent process (two replicas, 20 callers with
// channel encryption) drains it: it asks the sentinel to move its sessions, keeps serving
// what is in flight, and exits 0 once the sentinel reports it drained. No call fails, and
// every call after its exit is answered by the other replica.
func TestReplicaDrainSIGTERM(t *testing.T) {
	const callers = 20
	bin := goBinary(t, "github.com/fame-go/fame/examples/math/math-agent")
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken, "FAME_SECURITY_PROFILE": "overlay"})
	env := map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL": "channel", "FAME_DRAIN_TIMEOUT": "30s"}
	procs := map[string]*agentProc{
		"p1": startMathAgent(t, f, bin, "p1", env),
		"p2": startMathAgent(t, f, bin, "p2", env),
	}
	var calls, fails atomic.Int64
	var mu sync.Mutex
	var firstErr error
	by := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		c := f.nodeConfig()
		c.SystemID = fmt.Sprintf("caller%02d", i)
		c.SecurityProfile, c.EncryptionLevel = "overlay", "channel"
		n := f.connect(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var who string
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := n.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who)
				cancel()
				calls.Add(1)
				mu.Lock()
				if err != nil {
					fails.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					by[who]++
				}
				mu.Unlock()
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	waitUntil(t, 20*time.Second, "every caller pinned", func() bool {
		p := pinnedOf(t, f)
		return p["p1"]+p["p2"] == callers && calls.Load() >= 3*callers
	})
	pinned := pinnedOf(t, f)
	victim, other := "p1", "p2"
	if pinned["p2"] > pinned["p1"] {
		victim, other = "p2", "p1"
	}
	sig := time.Now()
	if err := procs[victim].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-procs[victim].exited:
	case <-time.After(45 * time.Second):
		t.Fatalf("%s did not exit after SIGTERM", victim)
	}
	exitAfter := time.Since(sig)
	if procs[victim].err != nil {
		t.Fatalf("%s exit: %v, want 0", victim, procs[victim].err)
	}
	out := procs[victim].out.String()
	if !strings.Contains(out, "the sentinel reports this node drained") {
		t.Fatalf("%s did not exit on the sentinel's drained:\n%s", victim, out)
	}
	mu.Lock()
	before := by[other]
	mu.Unlock()
	waitUntil(t, 20*time.Second, "calls after the exit", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return by[other] >= before+2*callers
	})
	close(stop)
	wg.Wait()
	if n := fails.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed (first: %v), want 0", n, calls.Load(), firstErr)
	}
	if got := f.metric(t, "fame_replica_drains_total", `by="self"`); got != 1 {
		t.Fatalf("fame_replica_drains_total{self} = %v, want 1", got)
	}
	t.Logf("replica SIGTERM figures: %d callers, %d calls, 0 failed; %d sessions moved off %s; exit 0 %v after SIGTERM",
		callers, calls.Load(), pinned[victim], victim, exitAfter.Round(time.Millisecond))
}
