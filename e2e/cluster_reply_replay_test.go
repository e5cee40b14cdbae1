package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// TestClusterReplyReplayAtMostOnceReplicas: at-most-once replicas (they send each reply once)
// and at-least-once callers, most of them on s1, under load; kill -9 of s1 with calls in
// flight. The replies on their way through s1 die with it; the callers move to another
// sentinel and re-send (same envelope id). A replica that already ran such a request does not
// run it again but sends its kept reply to the re-send's new replyTo (node reply cache), so no
// call times out. Before the reply cache, the re-send was only acknowledged and the call
// timed out.
func TestClusterReplyReplayAtMostOnceReplicas(t *testing.T) {
	cf := startCluster(t, 3, "40s")
	ex := newExecLog()
	// At-most-once replicas: node.Config.Delivery left at its default.
	cf.procs[1].startReplica("r1", "*.fame.fabric", ex, func(c *node.Config) { c.AttachURL = cf.rotating(1) })
	cf.procs[2].startReplica("r2", "*.fame.fabric", ex, func(c *node.Config) { c.AttachURL = cf.rotating(2) })
	cf.waitReplicas(2)

	var clients []*node.Node
	for _, home := range []int{1, 1, 1, 1, 1, 1, 0, 2} {
		cfg := cf.clientConfig(home, true)
		cfg.Delivery = node.AtLeastOnce
		clients = append(clients, cf.procs[home].connect(cfg))
	}

	var ok, failed, timedOut, seq atomic.Int64
	var errMu sync.Mutex
	var errs []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for ci, c := range clients {
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("c%d-%d", ci, seq.Add(1))
					var who string
					// Well past the callers' re-send horizon: a call that times out lost its reply.
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					err := c.Call(ctx, mathagent.Address, "record", map[string]any{"key": key, "sleep_ms": 20}, &who)
					cancel()
					if err == nil {
						ok.Add(1)
						continue
					}
					failed.Add(1)
					if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, node.ErrTimeout) {
						timedOut.Add(1)
					}
					ex.mu.Lock()
					ran := fmt.Sprintf("executed %d time(s) by %q", ex.counts[key], ex.by[key])
					ex.mu.Unlock()
					errMu.Lock()
					errs = append(errs, fmt.Sprintf("%s (client %d, %s): %v", key, ci, ran, err))
					errMu.Unlock()
				}
			}()
		}
	}
	time.Sleep(1500 * time.Millisecond)
	killedAt := time.Now()
	if err := cf.procs[1].cmd.Process.Kill(); err != nil { // SIGKILL: no bye, no lame duck
		t.Fatal(err)
	}
	<-cf.procs[1].exited
	cf.waitReplicas(2, 1) // r1 back, seen from s0 and s2
	t.Logf("r1 visible again on s0 and s2 %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("calls: %d ok, %d failed (%d timed out); executed twice: %d", ok.Load(), failed.Load(), timedOut.Load(), len(ex.dupes()))
	if failed.Load() != 0 {
		t.Errorf("%d at-least-once calls to at-most-once replicas failed across the kill, want 0: %v",
			failed.Load(), errs[:min(len(errs), 5)])
	}
	if ok.Load() == 0 {
		t.Error("no call was answered")
	}
}
