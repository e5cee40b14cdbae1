package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
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

// TestSentinelRefusedItemEndsStream: the sentinel refuses one item of a stream (here OVERLOADED;
// in e2e a signature under an expired certificate) and nacks it to the serving node, whose
// replyTo it names. Before, the serving node dropped the nack and went on: the caller read
// every other item and a normal end. Now the stream ends with an error reply after the items
// sent before the nack came back. In a synctest bubble: the pause between items lets the nack
// arrive before the next item, as a round trip does on a real network.
func TestSentinelRefusedItemEndsStream(t *testing.T) {
	synctest.Test(t, testSentinelRefusedItemEndsStream)
}

func testSentinelRefusedItemEndsStream(t *testing.T) {
	f := newBubbleSentinel(t)
	var replies atomic.Int32
	f.drop = func(e *envelope.Envelope) bool {
		if e.FrameType() != envelope.TypeData || !strings.HasPrefix(e.To, "__rpc__") || replies.Add(1) != 4 {
			return false
		}
		nack, _ := envelope.New(&envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: envelope.CodeOverloaded, Reason: "queue full", RefID: e.ID}})
		back := f.route(e.ReplyTo)
		nack.SID, nack.TraceID, nack.To, nack.CorrID, nack.FlowID = envelope.SecureDigest("/"+f.id), e.TraceID, e.ReplyTo, e.CorrID, back.flow
		f.write(context.Background(), back, nack, envelope.FlowReset)
		return true
	}
	agent := connect(t, testConfig(f, "fame.fabric"))
	paced := Streaming(func(ctx context.Context, _ json.RawMessage, emit func(any) error) error {
		for i := range 8 {
			if err := emit(i); err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	})
	if err := agent.Serve(context.Background(), "math@fame.fabric", Ops{"paced": paced}); err != nil {
		t.Fatal(err)
	}
	client := connect(t, testConfig(f))
	items, err := readStream(t, client, "paced", map[string]int{})
	var remote *RemoteError
	if !errors.As(err, &remote) || !strings.Contains(remote.Message, envelope.CodeOverloaded) {
		t.Fatalf("paced = %v, %v; want the items before the refused one, then an error naming %s", items, err, envelope.CodeOverloaded)
	}
	if got := strings.Join(items, " "); got != "0 1 2" {
		t.Fatalf("items before the refusal = %q, want \"0 1 2\"", got)
	}
}
