package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

// TestDrainingNack: a call nacked DRAINING by the caller's own sentinel (it drains for a
// restart and refused the call unrouted). An at-least-once caller that asks where to attach
// before every dial (AttachURL: a list of the cluster's sentinels) sends it again once the
// drain has closed the link and it has attached anew — not after its back-off, set here far
// beyond the call's timeout — and the call runs once. A caller with a fixed URL, or an
// at-most-once one, gets the nack as its error at once and the call does not run.
func TestDrainingNack(t *testing.T) {
	for _, tc := range []struct {
		name      string
		alo, list bool
		resent    bool
	}{
		{"at-least-once, URL list", true, true, true},
		{"at-least-once, fixed URL", true, false, false},
		{"at-most-once, URL list", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSentinel(t)
			var runs atomic.Int64
			agent := connect(t, testConfig(f, "fame.fabric"))
			if err := agent.Serve(context.Background(), "math@fame.fabric", testOps("agent", &runs)); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(f)
			if tc.list {
				cfg.URL, cfg.AttachURL = "", func(context.Context) (string, error) { return f.url(), nil }
			}
			if tc.alo {
				cfg.Delivery = AtLeastOnce
				cfg.SenderRetry = RetryPolicy{MaxRetries: 5, BaseDelay: time.Minute, MaxDelay: time.Minute, Factor: 1}
			}
			client := connect(t, cfg)
			var nacked atomic.Int64
			f.drop = func(e *envelope.Envelope) bool {
				if e.FrameType() != envelope.TypeData || e.To != "math@fame.fabric" || nacked.Load() > 0 {
					return false
				}
				nacked.Add(1)
				f.mu.Lock()
				c := f.children[client.SystemID()]
				f.mu.Unlock()
				nack := &envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: "DRAINING", Reason: "sentinel is draining", RefID: e.ID}}
				out, _ := envelope.New(nack)
				out.SID, out.TraceID, out.To, out.CorrID, out.FlowID = envelope.SecureDigest("/"+f.id), e.TraceID, e.ReplyTo, e.CorrID, c.flow
				f.write(context.Background(), c, out, envelope.FlowReset)
				// The drain ends: the sentinel closes the link, asking for a re-attach.
				go func() {
					time.Sleep(50 * time.Millisecond)
					_ = c.conn.Close(websocket.StatusServiceRestart, "sentinel drained for a restart")
				}()
				return true
			}
			var sum int
			err := client.Call(context.Background(), "math@fame.fabric", "add", xy{2, 3}, &sum)
			if nacked.Load() != 1 {
				t.Fatalf("the sentinel nacked %d requests, want 1", nacked.Load())
			}
			if tc.resent {
				if err != nil || sum != 5 {
					t.Fatalf("call after a DRAINING nack: %d, %v; want it re-sent on the new link and answered", sum, err)
				}
				if n := f.attachCount(client.SystemID()); n != 2 {
					t.Fatalf("client attached %d times, want 2 (re-sent on the new link)", n)
				}
				if n := runs.Load(); n != 1 {
					t.Fatalf("the call ran %d times, want 1", n)
				}
				return
			}
			var ne *NackError
			if !errors.As(err, &ne) || ne.Code != "DRAINING" {
				t.Fatalf("call: %v, want the DRAINING nack as its error", err)
			}
			if n := runs.Load(); n != 0 {
				t.Fatalf("the call ran %d times, want 0", n)
			}
		})
	}
}
