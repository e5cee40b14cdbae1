package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

func (f *fabric) stats(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + f.addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fabric) poolSize(t *testing.T, pool string) int {
	pools, _ := f.stats(t)["routes"].(map[string]any)["pools"].(map[string]any)
	members, _ := pools[pool].([]any)
	return len(members)
}

func TestUnaryAndStream(t *testing.T) {
	f := newFabric(t, nil)
	f.startReplica("r1", "*.fame.fabric", nil, nil)
	f.startReplica("r2", "*.fame.fabric", nil, nil)
	c := f.connect(f.nodeConfig())
	ctx := context.Background()
	var sum, prod float64
	if err := c.Call(ctx, mathagent.Address, "add", map[string]any{"x": 3, "y": 4}, &sum); err != nil || sum != 7 {
		t.Fatalf("add = %v, %v", sum, err)
	}
	if err := c.Call(ctx, mathagent.Address, "multiply", map[string]any{"x": 6, "y": 7}, &prod); err != nil || prod != 42 {
		t.Fatalf("multiply = %v, %v", prod, err)
	}
	st, err := c.Stream(ctx, mathagent.Address, "fib_stream", map[string]any{"n": 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		v, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		got = append(got, string(v))
	}
	if strings.Join(got, " ") != "0 1 1 2 3 5 8 13 21 34" {
		t.Fatalf("fib_stream(10) = %v", got)
	}
	var rerr *node.RemoteError
	if err := c.Call(ctx, mathagent.Address, "nosuch", map[string]any{}, nil); !errors.As(err, &rerr) || rerr.Code != -32601 {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestNoRouteIsTyped(t *testing.T) {
	f := newFabric(t, nil)
	c := f.connect(f.nodeConfig())
	err := c.Call(context.Background(), "nobody@fame.fabric", "add", map[string]any{}, nil)
	var nack *node.NackError
	if !errors.Is(err, node.ErrNoRoute) || !errors.As(err, &nack) || !strings.Contains(nack.Reason, "nobody@fame.fabric") {
		t.Fatalf("want ErrNoRoute with the address in the reason, got %v", err)
	}
}

// A replica killed mid-run: its pool entry goes at once, and callers land on the survivor.
// Only a call that was in flight on the dead replica may fail (with a nack, not a timeout).
func TestReplicaKilledMidRun(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_STICKINESS": "off", "FAME_LOAD_BALANCING": "round_robin"})
	r1 := f.startReplica("r1", "*.fame.fabric", nil, nil)
	f.startReplica("r2", "*.fame.fabric", nil, nil)
	c := f.connect(f.nodeConfig())
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		seen[whoami(t, c)]++
	}
	if seen["r1"] == 0 || seen["r2"] == 0 {
		t.Fatalf("round robin did not use both replicas: %v", seen)
	}
	// One request in flight on r1 when it dies.
	var wg sync.WaitGroup
	var inflightErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2; i++ { // round robin: one of two lands on r1
			var who string
			err := c.Call(context.Background(), mathagent.Address, "record", map[string]any{"key": fmt.Sprint(i), "sleep_ms": 500}, &who)
			if err != nil {
				inflightErr = err
			}
		}
	}()
	time.Sleep(150 * time.Millisecond)
	killed := time.Now()
	_ = r1.Close()
	waitUntil(t, 2*time.Second, "r1 to leave the pool", func() bool { return f.poolSize(t, "math@*.fame.fabric") == 1 })
	t.Logf("pool entry removed %v after close", time.Since(killed))
	for i := 0; i < 20; i++ {
		if who := whoami(t, c); who != "r2" {
			t.Fatalf("call %d went to %s after r1 died", i, who)
		}
	}
	wg.Wait()
	if inflightErr != nil && !errors.Is(inflightErr, node.ErrNack) {
		t.Fatalf("the in-flight call failed with %v; want a nack (not a timeout)", inflightErr)
	}
	t.Logf("in-flight call result: %v", inflightErr)
}

func TestSentinelRestart(t *testing.T) {
	f := newFabric(t, nil)
	f.startReplica("r1", "*.fame.fabric", nil, nil)
	c := f.connect(f.nodeConfig())
	if who := whoami(t, c); who != "r1" {
		t.Fatalf("whoami = %s", who)
	}
	f.restart()
	// Nodes reconnect with backoff and re-bind; calls work again without anyone's help.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var who string
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who)
		cancel()
		if err == nil && who == "r1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls did not recover after sentinel restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestManyConcurrentCallers(t *testing.T) {
	f := newFabric(t, nil)
	f.startReplica("r1", "*.fame.fabric", nil, nil)
	f.startReplica("r2", "*.fame.fabric", nil, nil)
	clients := make([]*node.Node, 5)
	for i := range clients {
		clients[i] = f.connect(f.nodeConfig())
	}
	const callers = 500
	var wg sync.WaitGroup
	var failed atomic.Int64
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var sum float64
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := clients[i%len(clients)].Call(ctx, mathagent.Address, "add", map[string]any{"x": i, "y": 1}, &sum)
			if err == nil && sum != float64(i+1) {
				err = fmt.Errorf("add(%d,1) = %v", i, sum)
			}
			if err != nil {
				failed.Add(1)
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d concurrent calls failed; first: %v", n, callers, <-errs)
	}
}

func TestAtLeastOnce(t *testing.T) {
	f := newFabric(t, nil)
	ex := newExecLog()
	alo := func(c *node.Config) {
		c.Delivery = node.AtLeastOnce
		c.SenderRetry = node.DefaultSenderRetry
		c.ReceiverRetry = node.DefaultReceiverRetry
	}
	f.startReplica("r1", "*.fame.fabric", ex, alo)
	cfg := f.nodeConfig()
	alo(&cfg)
	c := f.connect(cfg)
	for i := 0; i < 50; i++ {
		var who string
		if err := c.Call(context.Background(), mathagent.Address, "record", map[string]any{"key": fmt.Sprint(i)}, &who); err != nil {
			t.Fatal(err)
		}
	}
	if d := ex.dupes(); len(d) > 0 || len(ex.counts) != 50 {
		t.Fatalf("executions: %d keys, dupes %v", len(ex.counts), d)
	}
}
