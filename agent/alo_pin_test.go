package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// TestPinnedCallsAtLeastOnce: under at-least-once the caller acknowledges each reply to its
// replyTo, which for a capability-routed or pinned call is agent@<the agent's path>: the acks
// reach the agent (each reply and stream item is acknowledged, never re-sent), and pinned
// calls work end to end.
func TestPinnedCallsAtLeastOnce(t *testing.T) {
	url := fabric(t)
	ctx := context.Background()
	alo := func(logicals ...string) *node.Node {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := node.Connect(c, node.Config{URL: url, RequestedLogicals: logicals, Delivery: node.AtLeastOnce,
			Logger: slog.New(slog.DiscardHandler), CallTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	srv, cli := alo("fame.fabric"), alo()
	replies := make(chan error, 64)
	ops := node.Ops{"count": node.Streaming(func(_ context.Context, _ json.RawMessage, emit func(any) error) error {
		for i := range 3 {
			// emit returns once the item was acknowledged (or not, after the retries).
			replies <- emit(i)
		}
		return nil
	})}
	if err := srv.ServeCapabilities(ctx, "alo@fame.fabric", ops, []string{"alo.v1"}); err != nil {
		t.Fatal(err)
	}
	st, err := cli.StreamCapabilities(ctx, []string{"alo.v1"}, "count", nil)
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for {
		_, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		path = st.Responder()
	}
	if path != srv.AssignedPath() {
		t.Fatalf("responder %q, want the server's path %q", path, srv.AssignedPath())
	}
	st, err = cli.StreamAt(ctx, path, []string{"alo.v1"}, "count", nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("pinned stream: %d items", n)
	}
	for range 6 {
		if err := <-replies; err != nil {
			t.Fatalf("a stream item was not acknowledged: %v", err)
		}
	}
}
