package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestReplicaKilledMidStream: a replica that dies in the middle of a stream leaves no client
// waiting for its timeout. The sentinel used to forget a stream request at its first item, so
// the client sat out its call timeout; now the stream stays tracked until its final item and the
// replica's death nacks it ROUTE_CONNECTOR_CLOSED at once.
func TestReplicaKilledMidStream(t *testing.T) {
	f := newFabric(t, nil)
	replica := dialRaw(t, f, "fibber", nil)
	replica.attach("fame.fabric")
	if ack := replica.bind("fib@fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}
	cfg := f.nodeConfig()
	cfg.CallTimeout = 30 * time.Second // so that waiting for the timeout cannot pass for a nack
	client := f.connect(cfg)
	ctx := context.Background()
	st, err := client.Stream(ctx, "fib@fame.fabric", "fib_stream", map[string]any{"n": 10})
	if err != nil {
		t.Fatal(err)
	}
	req := replica.recv()
	if req.CorrID == "" || !req.RType.Has(envelope.RTypeStream) {
		t.Fatalf("stream request: corrId %q rtype %d", req.CorrID, req.RType)
	}
	var rpc struct {
		ID json.RawMessage `json:"id"`
	}
	fr, _ := req.DecodeFrame()
	_ = json.Unmarshal(fr.(*envelope.Data).Payload, &rpc)
	for i := 0; i < 2; i++ {
		replica.sendFrame(&envelope.Data{Payload: json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%d}`, rpc.ID, i))},
			func(e *envelope.Envelope) { e.To, e.CorrID = req.ReplyTo, req.CorrID })
		if v, err := st.Next(ctx); err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("item %d: %s, %v", i, v, err)
		}
	}
	start := time.Now()
	_ = replica.ws.CloseNow() // killed: no close frame, no final item
	_, err = st.Next(ctx)
	took := time.Since(start)
	if !isNack(err, envelope.CodeRouteConnectorClosed) {
		t.Fatalf("after the replica died mid-stream: %v, want a ROUTE_CONNECTOR_CLOSED nack", err)
	}
	t.Logf("replica killed mid-stream: client nacked after %v", took)
	if took > 2*time.Second {
		t.Fatalf("nack took %v: the client waited instead of being told", took)
	}

	// A stream that ended (final null result) is forgotten: the replica's later death nacks
	// nothing for it.
	f.startReplica("r1", "fame.fabric", nil, nil)
	st2, err := client.Stream(ctx, "math@fame.fabric", "fib_stream", map[string]any{"n": 3})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := st2.Next(ctx)
		if err != nil {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("fib_stream(3) gave %d items", n)
	}
	if p := f.pendingOn(t, "r1"); p != 0 {
		t.Fatalf("r1 still holds %d pending requests after its stream ended", p)
	}
	victimServes(t, f, client)
}
