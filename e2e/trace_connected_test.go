package e2e

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/tracing"
)

// TestTraceOneCallConnected: with tracing on everywhere, one call client -> sentinel ->
// replica reaches a real OTLP/HTTP receiver as one trace: the client's call span, the
// sentinel's route span (a child of the call span, naming the chosen replica), the replica's
// serve span (a child of the route span), and the route span of the reply (a child of the
// serve span). The trace id is the one the reference derives from the envelope traceId.
// The second call of the same session is routed by its stickiness binding.
func TestTraceOneCallConnected(t *testing.T) {
	rcv := newOTLPReceiver(t)
	stTr, r1Tr, r2Tr, clTr := rcv.tracer(t, "sentinel"), rcv.tracer(t, "replica1"), rcv.tracer(t, "replica2"), rcv.tracer(t, "client")
	f := newTracedFabric(t, map[string]string{}, stTr)
	f.startReplica("replica1", "*.fame.fabric", nil, func(c *node.Config) { c.Tracer = r1Tr })
	f.startReplica("replica2", "*.fame.fabric", nil, func(c *node.Config) { c.Tracer = r2Tr })
	cfg := f.nodeConfig()
	cfg.Tracer = clTr
	client := f.connect(cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sum float64
	if err := client.Call(ctx, mathagent.Address, "add", map[string]any{"x": 3, "y": 4}, &sum); err != nil || sum != 7 {
		t.Fatalf("add = %v, %v", sum, err)
	}
	var prod float64
	if err := client.Call(ctx, mathagent.Address, "multiply", map[string]any{"x": 6, "y": 7}, &prod); err != nil || prod != 42 {
		t.Fatalf("multiply = %v, %v", prod, err)
	}
	flush(t, clTr, stTr, r1Tr, r2Tr)

	for i, method := range []string{"add", "multiply"} {
		var call, route, serve, reply gotSpan
		waitUntil(t, 10*time.Second, "the spans of "+method, func() bool {
			flush(t, clTr, stTr, r1Tr, r2Tr)
			calls := rcv.find(func(s gotSpan) bool { return s.name == tracing.SpanCall && s.attrs["rpc.method"] == method })
			if len(calls) != 1 {
				return false
			}
			call = calls[0]
			routes := rcv.find(func(s gotSpan) bool {
				return s.name == tracing.SpanRoute && s.attrs["env.id"] == call.attrs["env.id"]
			})
			serves := rcv.find(func(s gotSpan) bool { return s.name == tracing.SpanServe && s.attrs["env.id"] == call.attrs["env.id"] })
			if len(routes) != 1 || len(serves) != 1 {
				return false
			}
			route, serve = routes[0], serves[0]
			replies := rcv.find(func(s gotSpan) bool {
				return s.name == tracing.SpanRoute && s.pspan == serve.spanID
			})
			if len(replies) != 1 {
				return false
			}
			reply = replies[0]
			return true
		})
		if bad := rcv.badRequests(); len(bad) > 0 {
			t.Fatalf("receiver refused requests: %v", bad)
		}
		if call.service != "client" || route.service != "sentinel" || serve.service != route.attrs["fame.route.replica"] || reply.service != "sentinel" {
			t.Fatalf("%s: services call=%s route=%s serve=%s (routed to %s) reply=%s", method, call.service, route.service,
				serve.service, route.attrs["fame.route.replica"], reply.service)
		}
		for _, s := range []gotSpan{route, serve, reply} {
			if s.traceID != call.traceID {
				t.Fatalf("%s: %s/%s in trace %s, the call in %s", method, s.service, s.name, s.traceID, call.traceID)
			}
		}
		if want := tracing.TraceIDFromEnvelope([]byte(call.attrs["env.trace_id"])); hex.EncodeToString(want[:]) != call.traceID {
			t.Fatalf("%s: trace id %s, want the reference's derivation of traceId %q", method, call.traceID, call.attrs["env.trace_id"])
		}
		if call.pspan != "" {
			t.Fatalf("%s: the call span has parent %s; it is the root", method, call.pspan)
		}
		if route.pspan != call.spanID {
			t.Fatalf("%s: route span's parent %s, want the call span %s", method, route.pspan, call.spanID)
		}
		if serve.pspan != route.spanID {
			t.Fatalf("%s: serve span's parent %s, want the route span %s", method, serve.pspan, route.spanID)
		}
		if route.attrs["env.trace_id"] != call.attrs["env.trace_id"] || route.attrs["env.to"] != mathagent.Address ||
			route.attrs["fame.route.outcome"] != "forwarded" {
			t.Fatalf("%s: route attributes %v", method, route.attrs)
		}
		wantSticky := []string{"false", "true"}[i] // the first call placed the session, the second followed it
		if route.attrs["fame.route.sticky"] != wantSticky {
			t.Fatalf("%s: fame.route.sticky = %q, want %s", method, route.attrs["fame.route.sticky"], wantSticky)
		}
		if serve.attrs["fame.hop_traced"] != "true" || serve.attrs["rpc.method"] != method {
			t.Fatalf("%s: serve attributes %v", method, serve.attrs)
		}
	}
	// Each client session attaches once: one attach span per node.
	if n := len(rcv.find(func(s gotSpan) bool { return s.name == tracing.SpanAttach })); n != 3 {
		t.Fatalf("%d attach spans, want 3", n)
	}
}

// TestTraceOverlayCallVerifies: under the overlay profile (every envelope signed, verified by
// the receiver) with tracing on, calls still verify: the traceparent in meta is outside what
// the signature covers and the sentinel forwards it untouched; the trace is still connected.
func TestTraceOverlayCallVerifies(t *testing.T) {
	rcv := newOTLPReceiver(t)
	stTr, rTr, clTr := rcv.tracer(t, "sentinel"), rcv.tracer(t, "replica1"), rcv.tracer(t, "client")
	f := newTracedFabric(t, profileOverlay.env, stTr)
	f.startReplica("replica1", "*.fame.fabric", nil, profileOverlay.mod(func(c *node.Config) { c.Tracer = rTr }))
	cfg := f.nodeConfig()
	profileOverlay.mod(func(c *node.Config) { c.Tracer = clTr })(&cfg)
	client := f.connect(cfg)
	for i := 0; i < 10; i++ {
		if who := whoami(t, client); who != "replica1" {
			t.Fatalf("call %d answered by %q", i, who)
		}
	}
	if refused := client.Refusals(); len(refused) > 0 {
		t.Fatalf("client refused envelopes: %v", refused)
	}
	var call, route, serve gotSpan
	waitUntil(t, 10*time.Second, "a connected trace", func() bool {
		flush(t, clTr, stTr, rTr)
		calls := rcv.find(func(s gotSpan) bool { return s.name == tracing.SpanCall })
		if len(calls) != 10 {
			return false
		}
		call = calls[9]
		r := rcv.find(func(s gotSpan) bool { return s.name == tracing.SpanRoute && s.attrs["env.id"] == call.attrs["env.id"] })
		sv := rcv.find(func(s gotSpan) bool { return s.name == tracing.SpanServe && s.attrs["env.id"] == call.attrs["env.id"] })
		if len(r) != 1 || len(sv) != 1 {
			return false
		}
		route, serve = r[0], sv[0]
		return true
	})
	if route.pspan != call.spanID || serve.pspan != route.spanID || serve.traceID != call.traceID {
		t.Fatalf("trace not connected: call %s/%s, route %s parent %s, serve %s parent %s", call.traceID, call.spanID,
			route.spanID, route.pspan, serve.traceID, serve.pspan)
	}
	if serve.errStatus || call.errStatus {
		t.Fatalf("error status on call or serve span")
	}
}
