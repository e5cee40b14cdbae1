package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fame-go/fame/node"
)

// Handle is a typed unary operation: params decode into In (bad params answer -32602) and
// Out is the result. Errors are mapped as the reference maps its exceptions (errors.go).
func Handle[In, Out any](f func(ctx context.Context, in In) (Out, error)) node.Op {
	return node.Unary(func(ctx context.Context, raw json.RawMessage) (any, error) {
		var in In
		if err := decode(raw, &in); err != nil {
			return nil, err
		}
		out, err := f(ctx, in)
		if err != nil {
			return nil, toRPC(err)
		}
		return out, nil
	})
}

// HandleStream is a typed streaming operation: emit sends one Out per stream item.
func HandleStream[In, Out any](f func(ctx context.Context, in In, emit func(Out) error) error) node.Op {
	return node.Streaming(func(ctx context.Context, raw json.RawMessage, emit func(any) error) error {
		var in In
		if err := decode(raw, &in); err != nil {
			return err
		}
		if err := f(ctx, in, func(o Out) error { return emit(o) }); err != nil {
			return toRPC(err)
		}
		return nil
	})
}

// Call is node.Call with a typed result.
func Call[Out any](ctx context.Context, n *node.Node, address, method string, in any) (Out, error) {
	var out Out
	err := n.Call(ctx, address, method, in, &out)
	return out, err
}

// TypedStream is the caller's side of a streaming call with typed items.
type TypedStream[Out any] struct{ s *node.Stream }

// CallStream is node.Stream with typed items.
func CallStream[Out any](ctx context.Context, n *node.Node, address, method string, in any) (*TypedStream[Out], error) {
	s, err := n.Stream(ctx, address, method, in)
	if err != nil {
		return nil, err
	}
	return &TypedStream[Out]{s: s}, nil
}

// Next returns the next item, io.EOF at the end of the stream.
func (t *TypedStream[Out]) Next(ctx context.Context) (Out, error) {
	var out Out
	raw, err := t.s.Next(ctx)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("agent: decode stream item: %w", err)
	}
	return out, nil
}

// Close ends the stream early.
func (t *TypedStream[Out]) Close() error { return t.s.Close() }
