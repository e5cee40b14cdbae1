package node

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// readStream reads a stream to its end: the items, and the error that ended it (nil at EOF).
func readStream(t *testing.T, n *Node, method string, params any) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.Stream(ctx, "math@fame.fabric", method, params)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var items []string
	for {
		raw, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return items, err
		}
		items = append(items, string(raw))
	}
}

// TestRefusedStreamItemFailsStream: a stream item the caller refuses (here its signature no
// longer verifies) must end the stream with an error, never leave a gap: before, the caller
// nacked the item to the serving node and read "0 1 1 3 5 8 13 21 34" then io.EOF, the
// fib_stream of e2e/TestFullStackRenewal with item "2" missing.
func TestRefusedStreamItemFailsStream(t *testing.T) {
	f := overlaySentinel(t)
	var replies atomic.Int32
	f.tamper = func(e *envelope.Envelope) {
		if e.FrameType() != envelope.TypeData || !strings.HasPrefix(e.To, "__rpc__") {
			return
		}
		if replies.Add(1) == 4 { // the fourth item, "2"
			e.Frame = []byte(strings.Replace(string(e.Frame), `"result":2`, `"result":7`, 1))
		}
	}
	_, client := agentAndClient(t, f, overlay(""))
	items, err := readStream(t, client, "fib_stream", map[string]int{"n": 10})
	if !errors.Is(err, ErrReplyRefused) || !strings.Contains(err.Error(), codeSignatureFailed) {
		t.Fatalf("fib_stream = %v, %v; want the items before the refused one and an ErrReplyRefused (%s)", items, err, codeSignatureFailed)
	}
	if got := strings.Join(items, " "); got != "0 1 1" {
		t.Fatalf("items before the refusal = %q, want \"0 1 1\"", got)
	}
	// The refusal failed only that stream: the next one is whole.
	if items, err := readStream(t, client, "fib_stream", map[string]int{"n": 10}); err != nil || strings.Join(items, " ") != "0 1 1 2 3 5 8 13 21 34" {
		t.Fatalf("next fib_stream = %v, %v", items, err)
	}
}
