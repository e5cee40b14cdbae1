package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fame-go/fame/node"
)

// TargetConfig says where the load goes and what each call carries.
type TargetConfig struct {
	// Node is the base configuration of every client node (URL included); RequestedLogicals
	// is left as the caller set it.
	Node node.Config
	// To and Method name the operation, e.g. "math@fame.fabric" and "add".
	To     string
	Method string
	// Conns is the number of client nodes (WebSocket connections); callers share them round
	// robin. Default 1.
	Conns int
	// PayloadBytes adds a string parameter "pad" of that many bytes to every request.
	PayloadBytes int
}

// Params of every request: add's operands, so the answer can be checked, plus the padding.
const addX, addY, addSum = 3, 4, 7

// NodeTarget is a set of attached client nodes and the request they send.
type NodeTarget struct {
	cfg    TargetConfig
	nodes  []*node.Node
	params json.RawMessage
	check  bool // the method is add: verify the sum
}

// DialTarget attaches cfg.Conns client nodes. On error every node already attached is closed.
func DialTarget(ctx context.Context, cfg TargetConfig) (*NodeTarget, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.To == "" || cfg.Method == "" {
		return nil, fmt.Errorf("%w: target address and method are required", ErrOptions)
	}
	if cfg.PayloadBytes < 0 {
		return nil, fmt.Errorf("%w: payload must be >= 0 bytes, got %d", ErrOptions, cfg.PayloadBytes)
	}
	t := &NodeTarget{cfg: cfg, params: buildParams(cfg.PayloadBytes), check: cfg.Method == "add"}
	for i := 0; i < cfg.Conns; i++ {
		n, err := node.Connect(ctx, cfg.Node)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("loadgen: connect client %d of %d: %w", i+1, cfg.Conns, err)
		}
		t.nodes = append(t.nodes, n)
	}
	return t, nil
}

// buildParams is computed once so the generator spends no time marshalling per call.
func buildParams(pad int) json.RawMessage {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"x":%d,"y":%d`, addX, addY)
	if pad > 0 {
		b.WriteString(`,"pad":"`)
		b.WriteString(strings.Repeat("a", pad))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Call is the CallFunc: worker w uses connection w mod Conns.
func (t *NodeTarget) Call(ctx context.Context, w int) error {
	n := t.nodes[w%len(t.nodes)]
	var out json.RawMessage
	if err := n.Call(ctx, t.cfg.To, t.cfg.Method, t.params, &out); err != nil {
		return err
	}
	if t.check {
		var got float64
		if err := json.Unmarshal(out, &got); err != nil || got != addSum {
			return fmt.Errorf("%w: %s(%d,%d) returned %s", ErrBadResult, t.cfg.Method, addX, addY, out)
		}
	}
	return nil
}

// Close detaches every client node.
func (t *NodeTarget) Close() error {
	var errs []error
	for _, n := range t.nodes {
		errs = append(errs, n.Close())
	}
	t.nodes = nil
	return errors.Join(errs...)
}
