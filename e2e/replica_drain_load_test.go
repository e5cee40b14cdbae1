package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// drainLoad is the load of the replica drain checks: callers SDK clients (each its own
// session) calling "record" (sleepMs each, so that calls are in flight whenever the drain
// starts) in a loop until stop, counting failures and which replica answered.
type drainLoad struct {
	calls, fails atomic.Int64
	mu           sync.Mutex
	firstErr     error
	by           map[string]int // replica -> calls answered
	stop         chan struct{}
	wg           sync.WaitGroup
	// afterMu guards answeredAfter: the replicas that answered calls started after mark.
	mark          atomic.Bool
	answeredAfter map[string]int
}

func startDrainLoad(t *testing.T, clients []*node.Node, sleepMs int) *drainLoad {
	d := &drainLoad{by: map[string]int{}, answeredAfter: map[string]int{}, stop: make(chan struct{})}
	for i, c := range clients {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-d.stop:
					return
				default:
				}
				after := d.mark.Load()
				var who string
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := c.Call(ctx, mathagent.Address, "record", map[string]any{"key": fmt.Sprintf("c%d-%d", i, j), "sleep_ms": sleepMs}, &who)
				cancel()
				d.calls.Add(1)
				d.mu.Lock()
				if err != nil {
					d.fails.Add(1)
					if d.firstErr == nil {
						d.firstErr = err
					}
				} else {
					d.by[who]++
					if after {
						d.answeredAfter[who]++
					}
				}
				d.mu.Unlock()
			}
		}()
	}
	return d
}

func (d *drainLoad) finish() {
	close(d.stop)
	d.wg.Wait()
}

// pinnedOf reads /stats stickySessions per system id.
func pinnedOf(t *testing.T, f *fabric) map[string]int {
	t.Helper()
	status, body := httpDo(t, f, http.MethodGet, "/stats", f.env["FAME_ADMIN_TOKEN"])
	if status != http.StatusOK {
		t.Fatalf("/stats: %d %s", status, body)
	}
	var st struct {
		Peers []struct {
			SystemID string `json:"systemId"`
			Sessions int    `json:"stickySessions"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range st.Peers {
		out[p.SystemID] = p.Sessions
	}
	return out
}

// TestReplicaDrainUnderLoad is the check of issue #16 part 2: 20 callers with sticky sessions
// and channel encryption (overlay, EncryptionLevel channel) call a pool of two replicas; the
// replica holding the most sessions is drained mid-load by its own Node.Drain (what SIGTERM
// does in math-agent) while calls are in flight on it. Every call succeeds, not even the
// in-flight ones fail; every session moves to the other replica (SecureClose, re-pin, the
// client re-opens its channel there); the drained replica ends with 0 pinned sessions and
// nothing in flight, Drain returns nil, and the replica closes. The admin endpoint answers
// 409 for a replica already draining and 404 with a reason for an unknown system id.
func TestReplicaDrainUnderLoad(t *testing.T) {
	const callers = 20
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken, "FAME_SECURITY_PROFILE": "overlay"})
	sec := func(c *node.Config) { c.SecurityProfile, c.EncryptionLevel = "overlay", "channel" }
	reps := map[string]*node.Node{
		"r1": f.startReplica("r1", "*.fame.fabric", nil, sec),
		"r2": f.startReplica("r2", "*.fame.fabric", nil, sec),
	}
	clients := make([]*node.Node, callers)
	for i := range clients {
		c := f.nodeConfig()
		c.SystemID = fmt.Sprintf("caller%02d", i)
		sec(&c)
		clients[i] = f.connect(c)
	}
	load := startDrainLoad(t, clients, 5)
	waitUntil(t, 20*time.Second, "every caller pinned and calling", func() bool {
		p := pinnedOf(t, f)
		return p["r1"]+p["r2"] == callers && load.calls.Load() >= 3*callers
	})
	pinned := pinnedOf(t, f)
	victim, other := "r1", "r2"
	if pinned["r2"] > pinned["r1"] {
		victim, other = "r2", "r1"
	}
	if pinned[victim] == 0 {
		t.Fatalf("no session pinned to either replica: %v", pinned)
	}
	inFlight := f.metric(t, "fame_drain_in_flight")

	drained := make(chan error, 1)
	drainStart := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drained <- reps[victim].Drain(ctx)
	}()
	waitUntil(t, 5*time.Second, "the drain to start", func() bool { return len(replicaDrainsOf(t, f)) == 1 })
	load.mark.Store(true)

	// The admin endpoint: 409 for the replica already draining, 404 for an unknown one.
	if status, body := httpDo(t, f, http.MethodPost, "/admin/replicas/"+victim+"/drain", drainAdminToken); status != http.StatusConflict {
		t.Fatalf("POST drain of a draining replica: %d %s, want 409", status, body)
	}
	if status, body := httpDo(t, f, http.MethodPost, "/admin/replicas/nobody/drain", drainAdminToken); status != http.StatusNotFound || body == "" {
		t.Fatalf("POST drain of an unknown replica: %d %q, want 404 with a reason", status, body)
	}

	var drainErr error
	select {
	case drainErr = <-drained:
	case <-time.After(40 * time.Second):
		t.Fatal("Drain did not return")
	}
	took := time.Since(drainStart)
	if drainErr != nil {
		t.Fatalf("Drain: %v, want nil (drained)", drainErr)
	}
	ds := replicaDrainsOf(t, f)
	if len(ds) != 1 || ds[0].SystemID != victim || ds[0].State != "drained" || ds[0].Result != "idle" ||
		ds[0].PinnedSessions != 0 || ds[0].InFlight != 0 || ds[0].By != "self" {
		t.Fatalf("/stats replicaDrains = %+v, want %s drained (idle, self) with 0 pinned and 0 in flight", ds, victim)
	}
	if p := pinnedOf(t, f); p[victim] != 0 || p[other] != callers {
		t.Fatalf("pinned after the drain: %v, want 0 on %s and %d on %s", p, victim, callers, other)
	}
	// The replica exits, as math-agent does once Drain returns; the load goes on a moment.
	_ = reps[victim].Close()
	before := load.calls.Load()
	waitUntil(t, 20*time.Second, "more calls after the drained replica left", func() bool { return load.calls.Load() >= before+2*callers })
	load.finish()

	if n := load.fails.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed (first: %v), want 0", n, load.calls.Load(), load.firstErr)
	}
	moved := f.metric(t, "fame_replica_sessions_moved_total", `reason="idle"`)
	if moved < float64(pinned[victim]) {
		t.Fatalf("fame_replica_sessions_moved_total{idle} = %v, want at least the %d sessions pinned to %s", moved, pinned[victim], victim)
	}
	for metric, want := range map[string]float64{
		`fame_replica_drains_total{by="self"}`:              1,
		`fame_replica_drains_finished_total{result="idle"}`: 1,
		`fame_replica_draining`:                             0,
	} {
		name, lbl := metric, ""
		if i := strings.IndexByte(metric, '{'); i >= 0 {
			name, lbl = metric[:i], metric[i+1:len(metric)-1]
		}
		var got float64
		if lbl == "" {
			got = f.metric(t, name)
		} else {
			got = f.metric(t, name, lbl)
		}
		if got != want {
			t.Fatalf("%s = %v, want %v", metric, got, want)
		}
	}
	logs := f.logs.String()
	for _, want := range []string{"replica drain started", "replica drain: session moved off", "replica drain: session re-pinned", "replica drained"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("sentinel log lacks %q", want)
		}
	}
	t.Logf("replica drain figures: %d callers, %d calls, 0 failed; %d sessions on %s (%v requests in flight over the fabric when the drain started) moved in %v; answered after the drain started: %v",
		callers, load.calls.Load(), pinned[victim], victim, inFlight, took.Round(time.Millisecond), load.answeredAfter)
}
