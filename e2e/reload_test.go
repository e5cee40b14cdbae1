package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// reloadFile is the sentinel file of the reload test, with the settings a reload changes.
func reloadFile(strategy string, ttlSec int, level string) string {
	return fmt.Sprintf(`node:
  type: Sentinel
  listeners:
    - {type: WebSocketListener, host: 127.0.0.1, port: 0}
  load_balancing: {type: LoadBalancingProfile, profile: %s}
  stickiness: {type: AFTLoadBalancerStickinessManager, default_ttl_sec: %d}
  limits: {max_routes: 64}
logging: {level: %s}
`, strategy, ttlSec, level)
}

// writeAtomically replaces path as editors and config-management tools do: a new file renamed
// over the old one.
func writeAtomically(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReload20TimesUnderLoad is the check of issue #16 part 3: a real `fame sentinel` started
// from a YAML file, two replicas and 20 callers calling without pause; the file is rewritten 20
// times (strategy, stickiness TTL and log level in turn; in place or by rename) with SIGHUPs in
// between. No connection drops (no attach after the first ones, no detach), no call fails.
// Then a bad file: refused with its problems in the log, the old configuration keeps serving.
func TestReload20TimesUnderLoad(t *testing.T) {
	const callers, reloads = 20, 20
	dir := t.TempDir()
	path := filepath.Join(dir, "sentinel.yml")
	writeAtomically(t, path, reloadFile("hrw", 3600, "info"))
	p := startFameSentinel(t, nil, "-c", path, "-reload-debounce", "50ms")
	f := p.fabric

	f.startReplica("reload-r1", "*.fame.fabric", nil, nil)
	f.startReplica("reload-r2", "*.fame.fabric", nil, nil)
	clients := make([]*node.Node, callers)
	for i := range clients {
		clients[i] = f.connect(f.nodeConfig())
	}
	waitUntil(t, 10*time.Second, "every node attached", func() bool {
		return f.metric(t, "fame_attaches_total") == callers+2
	})
	attaches := f.metric(t, "fame_attaches_total")
	conns := f.metric(t, "fame_connections")

	var calls, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var sum int
				err := c.Call(context.Background(), mathagent.Address, "add", map[string]any{"x": i, "y": n}, &sum)
				calls.Add(1)
				if err != nil || sum != i+n {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("caller %d: sum %d, err %v", i, sum, err))
				}
			}
		}()
	}

	strategies := []string{"round_robin", "random", "least_connections", "hrw"}
	gen := 0.0
	for i := range reloads {
		body := reloadFile(strategies[i%len(strategies)], 1800+60*i, []string{"debug", "info"}[i%2])
		if i%2 == 0 {
			writeAtomically(t, path, body)
		} else if err := os.WriteFile(path, []byte(body), 0o600); err != nil { // in place
			t.Fatal(err)
		}
		gen++
		waitUntil(t, 10*time.Second, fmt.Sprintf("reload %d applied", i+1), func() bool {
			return f.metric(t, "fame_config_generation") == gen
		})
		if i%5 == 4 { // and a SIGHUP now and then
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			gen++
			waitUntil(t, 10*time.Second, "SIGHUP reload applied", func() bool {
				return f.metric(t, "fame_config_generation") == gen
			})
		}
	}
	callsDuring := calls.Load()

	// A bad file: every problem in the log, the old configuration in force.
	refused := f.metric(t, "fame_config_reloads_total", `result="refused"`)
	writeAtomically(t, path, "node:\n  listeners: [{type: WebSocketListener, host: 127.0.0.1, port: 0}]\n  load_balancing: {profile: fastest}\n  limitz: {}\n")
	waitUntil(t, 10*time.Second, "the bad file refused", func() bool {
		return f.metric(t, "fame_config_reloads_total", `result="refused"`) == refused+1
	})
	if got := f.metric(t, "fame_config_generation"); got != gen {
		t.Fatalf("generation %v after a refused reload, want %v", got, gen)
	}
	out := p.out.String()
	for _, want := range []string{"config reload refused", `load_balancing.profile: \"fastest\"`, `unknown key node.limitz (did you mean \"limits\"?)`} {
		if !strings.Contains(out, want) {
			t.Fatalf("the refusal log lacks %q", want)
		}
	}
	// Still serving: ten more calls of a caller, and a new client attaches and calls.
	before := calls.Load()
	waitUntil(t, 10*time.Second, "ten more calls after the bad file", func() bool { return calls.Load() >= before+10 })
	fresh := f.connect(f.nodeConfig())
	var sum int
	if err := fresh.Call(context.Background(), mathagent.Address, "add", map[string]any{"x": 2, "y": 3}, &sum); err != nil || sum != 5 {
		t.Fatalf("a new client after the bad file: %d, %v", sum, err)
	}
	close(stop)
	wg.Wait()

	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed; first: %v", n, calls.Load(), firstErr.Load())
	}
	if got := f.metric(t, "fame_attaches_total"); got != attaches+1 { // +1: the fresh client
		t.Fatalf("fame_attaches_total %v, want %v: a connection was dropped and re-attached", got, attaches+1)
	}
	if got := f.metric(t, "fame_connections"); got != conns+1 {
		t.Fatalf("fame_connections %v, want %v", got, conns+1)
	}
	if strings.Contains(out, "node detached") {
		t.Fatal("a node detached during the reloads")
	}
	if got := f.metric(t, "fame_config_reloads_total", `result="applied"`); got != gen {
		t.Fatalf("applied reloads %v, want %v", got, gen)
	}
	t.Logf("%d reloads (%v generations) under %d callers: %d calls during the reloads, %d in all, 0 failed, 0 dropped",
		reloads, gen, callers, callsDuring, calls.Load())
}
