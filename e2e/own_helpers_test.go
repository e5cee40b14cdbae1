package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// whoamiAt calls whoami on the agent at addr with a real SDK client.
func whoamiAt(t *testing.T, n *node.Node, addr string) string {
	t.Helper()
	var who string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Call(ctx, addr, "whoami", map[string]any{}, &who); err != nil {
		t.Fatalf("whoami at %s: %v", addr, err)
	}
	return who
}
