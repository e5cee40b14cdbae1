package mathagent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fame-go/fame/node"
)

// Address is where the math agent is served and called.
const Address = "math@fame.fabric"

// maxFib bounds fib_stream: past 92 terms the values overflow int64.
const maxFib = 92

type pair struct {
	X *float64 `json:"x"`
	Y *float64 `json:"y"`
}

func decodePair(p json.RawMessage) (float64, float64, error) {
	var a pair
	if err := json.Unmarshal(p, &a); err != nil {
		return 0, 0, fmt.Errorf("%w: want {\"x\":number,\"y\":number}: %v", node.ErrInvalidParams, err)
	}
	if a.X == nil || a.Y == nil {
		return 0, 0, fmt.Errorf("%w: x and y are required", node.ErrInvalidParams)
	}
	return *a.X, *a.Y, nil
}

// number returns integral results as integers so they print as the reference's (7, not 7.0).
func number(f float64) any {
	if f == float64(int64(f)) {
		return int64(f)
	}
	return f
}

// Ops returns the agent's operations; whoami answers name.
func Ops(name string) node.Ops { return OpsWithLog(name, nil) }

// OpsWithLog is Ops whose add, multiply and fib_stream record every execution whose params
// carry an idempotency key (KeyParam) in log (nil: none).
func OpsWithLog(name string, log *ExecLog) node.Ops {
	return node.Ops{
		"add": node.Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			x, y, err := decodePair(p)
			if err != nil {
				return nil, err
			}
			log.record("add", p)
			return number(x + y), nil
		}),
		"multiply": node.Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			x, y, err := decodePair(p)
			if err != nil {
				return nil, err
			}
			log.record("multiply", p)
			return number(x * y), nil
		}),
		"fib_stream": node.Streaming(func(ctx context.Context, p json.RawMessage, emit func(any) error) error {
			var a struct {
				N *int `json:"n"`
			}
			if err := json.Unmarshal(p, &a); err != nil || a.N == nil {
				return fmt.Errorf("%w: want {\"n\":integer}", node.ErrInvalidParams)
			}
			if *a.N < 0 || *a.N > maxFib {
				return fmt.Errorf("%w: n must be in [0, %d]", node.ErrInvalidParams, maxFib)
			}
			log.record("fib_stream", p)
			x, y := int64(0), int64(1)
			for i := 0; i < *a.N; i++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := emit(x); err != nil {
					return err
				}
				x, y = y, x+y
			}
			return nil
		}),
		"whoami": node.Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			return name, nil
		}),
	}
}
