package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/sentinel"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startFabric runs an in-process sentinel on a loopback port and one math agent bound at
// math@fame.fabric with an extra op, "wrong", that answers add's question wrongly. It returns
// the attach URL.
func startFabric(t testing.TB) string {
	t.Helper()
	opts, err := sentinel.LoadOptions("", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s, err := sentinel.New(opts, sentinel.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "ws://" + l.Addr().String() + "/fame/v1/attach/ws/downstream"

	agent, err := node.Connect(ctx, node.Config{URL: url, RequestedLogicals: []string{"fame.fabric"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	ops := mathagent.Ops("bench-test")
	// echo_pad fails unless it received exactly the 300-byte pad TestNodeTargetPadding sends.
	ops["echo_pad"] = node.Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
		var in struct{ Pad string }
		if err := json.Unmarshal(p, &in); err != nil {
			return nil, err
		}
		if len(in.Pad) != 300 || strings.Trim(in.Pad, "a") != "" {
			return nil, fmt.Errorf("%w: pad of %d bytes", node.ErrInvalidParams, len(in.Pad))
		}
		return len(in.Pad), nil
	})
	ops["wrong"] = node.Unary(func(ctx context.Context, p json.RawMessage) (any, error) { return 8, nil })
	if err := agent.Serve(ctx, mathagent.Address, ops); err != nil {
		t.Fatal(err)
	}
	return url
}

func dial(t testing.TB, url, method string, conns, pad int) *NodeTarget {
	t.Helper()
	tg, err := DialTarget(context.Background(), TargetConfig{
		Node: node.Config{URL: url, Logger: quiet()}, To: mathagent.Address, Method: method, Conns: conns, PayloadBytes: pad,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestNodeTargetThroughSentinel(t *testing.T) {
	url := startFabric(t)
	tg := dial(t, url, "add", 3, 0)
	if len(tg.nodes) != 3 {
		t.Fatalf("%d client nodes, want 3", len(tg.nodes))
	}
	res, err := Run(context.Background(), Options{Callers: 6, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, CallTimeout: 5 * time.Second}, tg.Call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls() == 0 || res.ErrorCount() != 0 {
		t.Fatalf("%d calls ok, errors %v", res.Calls(), res.Errors)
	}
}

func TestNodeTargetPadding(t *testing.T) {
	url := startFabric(t)
	tg := dial(t, url, "echo_pad", 1, 300)
	if err := tg.Call(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	short := dial(t, url, "echo_pad", 1, 299) // proves the op really checks
	if got := Classify(short.Call(context.Background(), 0)); got != "remote:-32602" {
		t.Fatalf("299-byte pad: kind %q, want remote:-32602", got)
	}
}

func TestNodeTargetErrorKinds(t *testing.T) {
	url := startFabric(t)
	tests := []struct {
		to, method string
		want       string
	}{
		{mathagent.Address, "wrong", ""},             // only add's answer is checked
		{mathagent.Address, "nope", "remote:-32601"}, // method not found
		{"nobody@fame.fabric", "add", "nack:NO_ROUTE"},
	}
	for _, tc := range tests {
		tg, err := DialTarget(context.Background(), TargetConfig{Node: node.Config{URL: url, Logger: quiet()}, To: tc.to, Method: tc.method})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got := Classify(tg.Call(ctx, 7))
		cancel()
		tg.Close()
		if got != tc.want {
			t.Errorf("%s %s: kind %q, want %q", tc.to, tc.method, got, tc.want)
		}
	}
	// add is checked: point the check at an op that answers 8.
	tg := dial(t, url, "wrong", 1, 0)
	tg.check = true
	if got := Classify(tg.Call(context.Background(), 0)); got != KindBadResult {
		t.Errorf("wrong sum: kind %q, want %q", got, KindBadResult)
	}
}

func TestDialTargetRefusesBadConfig(t *testing.T) {
	bad := []TargetConfig{
		{Node: node.Config{URL: "ws://127.0.0.1:1/x"}, Method: "add"},
		{Node: node.Config{URL: "ws://127.0.0.1:1/x"}, To: "math@fame.fabric"},
		{Node: node.Config{URL: "ws://127.0.0.1:1/x"}, To: "math@fame.fabric", Method: "add", PayloadBytes: -1},
	}
	for _, c := range bad {
		if _, err := DialTarget(context.Background(), c); err == nil || !strings.Contains(err.Error(), "invalid options") {
			t.Errorf("%+v: err %v", c, err)
		}
	}
}

func TestBuildParams(t *testing.T) {
	for _, pad := range []int{0, 1, 1000} {
		var p struct {
			X, Y float64
			Pad  *string
		}
		if err := json.Unmarshal(buildParams(pad), &p); err != nil {
			t.Fatalf("pad %d: %v", pad, err)
		}
		if p.X != addX || p.Y != addY || (pad == 0) != (p.Pad == nil) || (p.Pad != nil && len(*p.Pad) != pad) {
			t.Fatalf("pad %d: %+v", pad, p)
		}
	}
}
