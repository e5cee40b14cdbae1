package ceiling

import (
	"context"
	"fmt"

	"github.com/fame-go/fame/loadgen"
)

// Measure attaches a fresh caller named id at relayURL, drives it under opts (all callers
// share the one connection, as they share one node.Node in `fame bench`) and detaches it.
func Measure(ctx context.Context, relayURL, id string, cfg Config, opts loadgen.Options) (*loadgen.Result, error) {
	c, err := DialCaller(ctx, relayURL, id, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res, err := loadgen.Run(ctx, opts, c.Call)
	if err != nil {
		return nil, fmt.Errorf("ceiling: run %s: %w", id, err)
	}
	return res, nil
}
