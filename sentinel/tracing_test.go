package sentinel

import (
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/tracing"
)

// startTracedSentinel is startSentinel with a tracer recording into memory.
func startTracedSentinel(t *testing.T, env map[string]string) (*testSentinel, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	return startSentinel(t, env, WithTracer(tracing.NewWithExporter(tracing.Config{ServiceName: "sentinel"}, exp))), exp
}

// spanAttrs returns the attributes of the first span called name whose attribute key has
// value val (nil when none).
func spanAttrs(exp *tracetest.InMemoryExporter, name, key, val string) map[string]attribute.Value {
	for _, s := range exp.GetSpans() {
		if s.Name != name {
			continue
		}
		m := map[string]attribute.Value{}
		for _, kv := range s.Attributes {
			m[string(kv.Key)] = kv.Value
		}
		if v, ok := m[key]; ok && v.Emit() == val {
			return m
		}
	}
	return nil
}

func waitSpan(t *testing.T, exp *tracetest.InMemoryExporter, name, key, val string) map[string]attribute.Value {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := spanAttrs(exp, name, key, val); m != nil {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s span with %s=%s", name, key, val)
	return nil
}

// TestTraceAttachAckAnnouncesHopSpans: a tracing sentinel says so in its NodeAttachAck's meta
// (the node parents its serve spans on the derived route span ids) and records the attach; a
// sentinel without a tracer puts no meta on the ack.
func TestTraceAttachAckAnnouncesHopSpans(t *testing.T) {
	for _, traced := range []bool{true, false} {
		var ts *testSentinel
		var exp *tracetest.InMemoryExporter
		if traced {
			ts, exp = startTracedSentinel(t, nil)
		} else {
			ts = startSentinel(t, nil)
		}
		p := dialRaw(t, ts, "a1")
		p.sendFrame(&envelope.NodeAttach{OriginType: "downstream", SystemID: "a1", InstanceID: envelope.NewID()}, nil)
		e := p.recv()
		if e.FrameType() != envelope.TypeNodeAttachAck {
			t.Fatalf("got %s", e.FrameType())
		}
		if got := tracing.HopTraced(e.Meta); got != traced {
			t.Fatalf("traced=%v: ack meta %s", traced, e.Meta)
		}
		if traced {
			waitSpan(t, exp, tracing.SpanAttach, "fame.system_id", "a1")
		} else if len(e.Meta) != 0 {
			t.Fatalf("untraced sentinel put meta %s on its ack", e.Meta)
		}
	}
}

// TestTraceRouteAndRepinSpans: the route span names the chosen replica and whether the
// session's binding chose it; losing that replica records a re-pin span.
func TestTraceRouteAndRepinSpans(t *testing.T) {
	ts, exp := startTracedSentinel(t, nil)
	replicas := map[string]*rawPeer{}
	for _, id := range []string{"r1", "r2"} {
		r := dialRaw(t, ts, id)
		r.attach("*.fame.fabric")
		if ack := r.bind("math@*.fame.fabric"); !ack.OK {
			t.Fatalf("%s bind: %+v", id, ack)
		}
		replicas[id] = r
	}
	c := dialRaw(t, ts, "c1")
	c.attach()
	var chosen string
	for i, wantSticky := range []string{"false", "true"} {
		sent := c.sendFrame(&envelope.Data{Payload: json.RawMessage(`{}`)}, func(e *envelope.Envelope) {
			e.To, e.ReplyTo = "math@fame.fabric", "__rpc__x@"+c.path
		})
		m := waitSpan(t, exp, tracing.SpanRoute, "env.id", sent.ID)
		if m["fame.route.sticky"].Emit() != wantSticky || m["fame.route.outcome"].Emit() != "forwarded" ||
			m["env.to"].Emit() != "math@fame.fabric" || m["fame.route.source"].Emit() != "c1" {
			t.Fatalf("envelope %d: route span %v", i, m)
		}
		got := m["fame.route.replica"].Emit()
		if chosen != "" && got != chosen {
			t.Fatalf("second envelope went to %s, the session is on %s", got, chosen)
		}
		chosen = got
		if e := replicas[chosen].recv(); e.ID != sent.ID {
			t.Fatalf("%s got %s, want %s", chosen, e.ID, sent.ID)
		}
	}
	_ = replicas[chosen].ws.CloseNow()
	m := waitSpan(t, exp, tracing.SpanRepin, "fame.replica", chosen)
	if m["fame.repin.sessions"].AsInt64() != 1 {
		t.Fatalf("re-pin span %v", m)
	}
}
