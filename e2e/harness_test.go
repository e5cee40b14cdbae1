package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/fame-go/fame/internal/syncbuf"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/sentinel"
)

// fabric is a sentinel on a loopback port that can be stopped and restarted on the same port.
type fabric struct {
	t    *testing.T
	env  map[string]string
	addr string
	s    *sentinel.Sentinel
	logs *syncbuf.Buffer
	stop func()
	opts func(*sentinel.Options) // adjusts the options loaded from env (nil: none); see newFabricWith
}

func newFabric(t *testing.T, env map[string]string) *fabric {
	t.Helper()
	f := &fabric{t: t, env: env, logs: &syncbuf.Buffer{}}
	f.start("127.0.0.1:0")
	t.Cleanup(func() { f.stop() })
	return f
}

func (f *fabric) start(addr string) {
	f.t.Helper()
	get := func(k string) (string, bool) { v, ok := f.env[k]; return v, ok }
	opts, err := sentinel.LoadOptions("", config.Getenv(get))
	if err != nil {
		f.t.Fatal(err)
	}
	if f.opts != nil {
		f.opts(&opts)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := sentinel.New(opts, sentinel.WithLogger(log))
	if err != nil {
		f.t.Fatal(err)
	}
	var l net.Listener
	for i := 0; i < 50; i++ { // the old socket may linger briefly after a restart
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, l); close(done) }()
	f.s = s
	var once sync.Once
	f.stop = func() { once.Do(func() { cancel(); <-done }) }
}

func (f *fabric) restart() {
	f.stop()
	f.start(f.addr)
}

func (f *fabric) url() string { return "ws://" + f.addr + "/fame/v1/attach/ws/downstream" }

func (f *fabric) nodeConfig(logicals ...string) node.Config {
	return node.Config{
		URL:               f.url(),
		RequestedLogicals: logicals,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		ReconnectMin:      50 * time.Millisecond,
		ReconnectMax:      500 * time.Millisecond,
		CallTimeout:       10 * time.Second,
	}
}

// connect attaches a node and closes it at the end of the test.
func (f *fabric) connect(cfg node.Config) *node.Node {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := node.Connect(ctx, cfg)
	if err != nil {
		f.t.Fatalf("connect: %v", err)
	}
	f.t.Cleanup(func() { _ = n.Close() })
	return n
}

// execLog counts completed executions of the "record" operation per key, across replicas.
type execLog struct {
	mu     sync.Mutex
	counts map[string]int
	by     map[string]string
}

func newExecLog() *execLog { return &execLog{counts: map[string]int{}, by: map[string]string{}} }

func (e *execLog) dupes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var d []string
	for k, n := range e.counts {
		if n > 1 {
			d = append(d, fmt.Sprintf("%s x%d", k, n))
		}
	}
	return d
}

// startReplica serves the math ops plus "record" (counts an execution once it completes; a
// replica killed mid-request never completes it, like a killed process).
func (f *fabric) startReplica(name string, logical string, ex *execLog, mod func(*node.Config)) *node.Node {
	f.t.Helper()
	cfg := f.nodeConfig(logical)
	cfg.SystemID = name
	if mod != nil {
		mod(&cfg)
	}
	n := f.connect(cfg)
	ops := mathagent.Ops(name)
	ops["record"] = node.Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
		var args struct {
			Key     string `json:"key"`
			SleepMs int    `json:"sleep_ms"`
		}
		if err := json.Unmarshal(p, &args); err != nil {
			return nil, err
		}
		select {
		case <-time.After(time.Duration(args.SleepMs) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ex != nil {
			ex.mu.Lock()
			ex.counts[args.Key]++
			ex.by[args.Key] = name
			ex.mu.Unlock()
		}
		return name, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Serve(ctx, mathagent.Address, ops); err != nil {
		f.t.Fatalf("serve %s: %v", name, err)
	}
	return n
}

func whoami(t *testing.T, n *node.Node) string {
	t.Helper()
	var who string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who); err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return who
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}
