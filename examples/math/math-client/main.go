// Command math-client calls the math example agent through the sentinel at
// FAME_DIRECT_ADMISSION_URL (or the one its welcome admission names) and prints
//
//	add(3, 4) = 7
//	multiply(6, 7) = 42
//	fib_stream(10) = 0 1 1 2 3 5 8 13 21 34
//
// then, with -whoami N, N lines "whoami = <name>", and with -concurrency N, "concurrent N ok"
// once N concurrent add calls all returned the right sum. It exits 0 only if every result was
// right; failures are described on stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/tracing"
)

func main() {
	whoami := flag.Int("whoami", 0, "call whoami N times (stops at the first failure)")
	concurrency := flag.Int("concurrency", 0, "make N concurrent add calls")
	address := flag.String("address", mathagent.Address, "the agent's address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failures, err := run(ctx, *address, *whoami, *concurrency)
	if err != nil {
		fmt.Fprintln(os.Stderr, "math-client:", err)
		os.Exit(1)
	}
	if failures > 0 {
		os.Exit(1)
	}
}

type client struct {
	n        *node.Node
	address  string
	failures int
}

func (c *client) fail(format string, args ...any) {
	c.failures++
	fmt.Fprintf(os.Stderr, "math-client: "+format+"\n", args...)
}

func run(ctx context.Context, address string, whoami, concurrency int) (int, error) {
	cfg, err := config.Node()
	if err != nil {
		return 0, err
	}
	// Tracing (OTEL_EXPORTER_OTLP_ENDPOINT; off when unset): flushed after the node closes.
	tcfg, err := config.NodeTracing(config.OSEnv, "math-client")
	if err != nil {
		return 0, err
	}
	if cfg.Tracer, err = tracing.Setup(ctx, tcfg); err != nil {
		return 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cfg.Tracer.Shutdown(sctx)
	}()
	n, err := node.Connect(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer n.Close()
	c := &client{n: n, address: address}
	c.binary(ctx, "add", 3, 4, 7)
	c.binary(ctx, "multiply", 6, 7, 42)
	c.fib(ctx)
	for i := 0; i < whoami; i++ {
		var name string
		if err := n.Call(ctx, address, "whoami", nil, &name); err != nil {
			// Stop at the first refusal: a draining or departed sentinel would refuse (or,
			// disconnected, time out) every later call the same way.
			c.fail("whoami #%d: %v (stopping the whoami calls)", i+1, err)
			break
		}
		if name == "" {
			c.fail("whoami #%d: empty name", i+1)
			continue
		}
		fmt.Printf("whoami = %s\n", name)
	}
	if concurrency > 0 {
		c.concurrent(ctx, concurrency)
	}
	return c.failures, nil
}

func (c *client) binary(ctx context.Context, method string, x, y, want int64) {
	var got int64
	if err := c.n.Call(ctx, c.address, method, map[string]int64{"x": x, "y": y}, &got); err != nil {
		c.fail("%s(%d, %d): %v", method, x, y, err)
		return
	}
	if got != want {
		c.fail("%s(%d, %d) = %d, want %d", method, x, y, got, want)
		return
	}
	fmt.Printf("%s(%d, %d) = %d\n", method, x, y, got)
}

func (c *client) fib(ctx context.Context) {
	const want = "0 1 1 2 3 5 8 13 21 34"
	st, err := c.n.Stream(ctx, c.address, "fib_stream", map[string]int{"n": 10})
	if err != nil {
		c.fail("fib_stream(10): %v", err)
		return
	}
	defer st.Close()
	var items []string
	for {
		raw, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.fail("fib_stream(10) after %d items: %v", len(items), err)
			return
		}
		var v json.Number
		if err := json.Unmarshal(raw, &v); err != nil {
			c.fail("fib_stream(10): item %s is not a number", raw)
			return
		}
		items = append(items, v.String())
	}
	got := strings.Join(items, " ")
	if got != want {
		c.fail("fib_stream(10) = %s, want %s", got, want)
		return
	}
	fmt.Printf("fib_stream(10) = %s\n", got)
}

func (c *client) concurrent(ctx context.Context, count int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got int64
			x, y := int64(i), int64(2*i)
			err := c.n.Call(ctx, c.address, "add", map[string]int64{"x": x, "y": y}, &got)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				bad++
				c.fail("concurrent add #%d: %v", i, err)
			case got != x+y:
				bad++
				c.fail("concurrent add(%d, %d) = %d, want %d", x, y, got, x+y)
			}
		}()
	}
	wg.Wait()
	if bad == 0 {
		fmt.Printf("concurrent %d ok\n", count)
	}
}
