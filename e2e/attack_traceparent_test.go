package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
)

// TestTraceAttackMalformedTraceparent: a raw peer puts giant, malformed, mistyped, duplicate
// and escaped traceparents (and a giant tracestate) in the meta of envelopes it routes through
// a tracing sentinel. The sentinel neither crashes nor refuses them: it ignores the bad trace
// context (counted in fame_trace_context_ignored_total by reason), records its route span
// without it, and forwards the envelope's meta byte for byte (it never rewrites trace context).
// A real SDK client is still served by the victim replica afterwards.
func TestTraceAttackMalformedTraceparent(t *testing.T) {
	rcv := newOTLPReceiver(t)
	stTr, rTr, clTr := rcv.tracer(t, "sentinel"), rcv.tracer(t, "replica1"), rcv.tracer(t, "client")
	f := newTracedFabric(t, map[string]string{}, stTr)
	f.startReplica("replica1", "*.fame.fabric", nil, func(c *node.Config) { c.Tracer = rTr })

	sink := dialRaw(t, f, "sink", nil)
	sink.attach("fame.fabric")
	if ack := sink.bind("sink@fame.fabric"); !ack.OK {
		t.Fatalf("sink bind refused: %+v", ack)
	}
	attacker := dialRaw(t, f, "attacker", nil)
	attacker.attach()

	valid := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	cases := []struct {
		name, meta, reason string // reason: the counter label that must move ("" for none)
	}{
		{"giant", `{"traceparent":"00-` + strings.Repeat("a", 200_000) + `"}`, "oversize"},
		{"bad hex", `{"traceparent":"00-zzf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`, "invalid"},
		{"zero trace id", `{"traceparent":"00-00000000000000000000000000000000-b7ad6b7169203331-01"}`, "invalid"},
		{"version ff", `{"traceparent":"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`, "invalid"},
		{"not a string", `{"traceparent":{"a":[1,2,3]}}`, "invalid"},
		{"escaped value", `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0\u0031"}`, "invalid"},
		{"escaped key", `{"trace\u0070arent":"` + valid + `"}`, ""},
		{"giant tracestate", `{"traceparent":"` + valid + `","tracestate":"k=` + strings.Repeat("v", 100_000) + `"}`, ""},
	}
	for _, tc := range cases {
		func() {
			before := map[string]float64{}
			for _, r := range []string{"oversize", "invalid", "duplicate"} {
				before[r] = f.metric(t, "fame_trace_context_ignored_total", `reason="`+r+`"`)
			}
			sent := attacker.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"x","params":{}}`)},
				func(e *envelope.Envelope) {
					e.To, e.ReplyTo, e.RType = "sink@fame.fabric", "__rpc__x@"+attacker.path, envelope.RTypeReply
					e.Meta = json.RawMessage(tc.meta)
				})
			got := sink.recv()
			if got.ID != sent.ID {
				t.Fatalf("%s: sink got %s (%s), want the attacker's %s", tc.name, got.ID, got.FrameType(), sent.ID)
			}
			if !bytes.Equal(got.Meta, []byte(tc.meta)) {
				t.Fatalf("%s: meta rewritten on the way: sent %d bytes, got %d", tc.name, len(tc.meta), len(got.Meta))
			}
			for r, b := range before {
				want := b
				if r == tc.reason {
					want = b + 1
				}
				if n := f.metric(t, "fame_trace_context_ignored_total", `reason="`+r+`"`); n != want {
					t.Fatalf("%s: fame_trace_context_ignored_total{reason=%q} = %v, want %v", tc.name, r, n, want)
				}
			}
		}()
	}
	// The route spans of the attacker's envelopes were recorded, each in the trace derived
	// from its envelope traceId (or, for the good traceparent, in the sender's trace).
	waitUntil(t, 10*time.Second, "route spans of the attacker's envelopes", func() bool {
		flush(t, stTr)
		return len(rcv.find(func(s gotSpan) bool {
			return s.name == "fame.sentinel.route" && s.attrs["fame.route.source"] == "attacker"
		})) == len(cases)
	})
	ignored := rcv.find(func(s gotSpan) bool { return s.attrs["fame.trace_context.ignored"] == "oversize" })
	if len(ignored) != 1 {
		t.Fatalf("%d route spans say the oversize traceparent was ignored, want 1", len(ignored))
	}
	if bad := rcv.badRequests(); len(bad) > 0 {
		t.Fatalf("receiver refused exports: %v", bad)
	}

	// A traceparent twice (also when one key is escaped) is a duplicate key, which the
	// envelope parser refuses before tracing sees it: the attacker is cut with the reason.
	malformed := f.metric(t, "fame_malformed_total")
	attacker.sendFrame(&envelope.Data{Payload: json.RawMessage(`{}`)}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo = "sink@fame.fabric", "__rpc__x@"+attacker.path
		e.Meta = json.RawMessage(`{"traceparent":"` + valid + `","trace\u0070arent":"` + valid + `"}`)
	})
	attacker.expectClosed(websocket.StatusInvalidFramePayloadData, "duplicate")
	if n := f.metric(t, "fame_malformed_total"); n != malformed+1 {
		t.Fatalf("fame_malformed_total = %v, want %v", n, malformed+1)
	}

	cfg := f.nodeConfig()
	cfg.Tracer = clTr
	servesTen(t, f.connect(cfg), "replica1")
}
