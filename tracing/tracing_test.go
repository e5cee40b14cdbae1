package tracing

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const validTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func TestTraceParseMeta(t *testing.T) {
	cases := []struct {
		name, meta string
		want       MetaStatus
		state      string
	}{
		{"valid", `{"traceparent":"` + validTP + `"}`, MetaOK, ""},
		{"valid with state and other keys", ` { "set" : {"aft":"x"}, "tracestate":"a=1,b=2", "traceparent" : "` + validTP + `", "n": [1, {"x": null}] } `, MetaOK, "a=1,b=2"},
		{"absent", `{"set":{"aft":"x"}}`, MetaAbsent, ""},
		{"empty object", `{}`, MetaAbsent, ""},
		{"not an object", `[1]`, MetaAbsent, ""},
		{"null", `null`, MetaAbsent, ""},
		{"nested only", `{"x":{"traceparent":"` + validTP + `"}}`, MetaAbsent, ""},
		{"escaped key", `{"trace\u0070arent":"` + validTP + `"}`, MetaAbsent, ""},
		{"oversize", `{"traceparent":"` + strings.Repeat("0", MaxTraceparent+1) + `"}`, MetaOversize, ""},
		{"bad hex", `{"traceparent":"00-zzf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`, MetaInvalid, ""},
		{"zero span", `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"}`, MetaInvalid, ""},
		{"number", `{"traceparent":12}`, MetaInvalid, ""},
		{"escaped value", `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0\u0031"}`, MetaInvalid, ""},
		{"duplicate", `{"traceparent":"` + validTP + `","traceparent":"` + validTP + `"}`, MetaDuplicate, ""},
		{"oversize state dropped", `{"traceparent":"` + validTP + `","tracestate":"a=` + strings.Repeat("b", MaxTracestate) + `"}`, MetaOK, ""},
		{"truncated", `{"traceparent":"` + validTP, MetaInvalid, ""},
	}
	for _, tc := range cases {
		sc, st := ParseMeta([]byte(tc.meta))
		if st != tc.want {
			t.Errorf("%s: status %v, want %v", tc.name, st, tc.want)
			continue
		}
		if (st == MetaOK) != sc.IsValid() {
			t.Errorf("%s: status %v with span context valid=%v", tc.name, st, sc.IsValid())
		}
		if st == MetaOK {
			if sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || sc.SpanID().String() != "b7ad6b7169203331" || !sc.IsSampled() || !sc.IsRemote() {
				t.Errorf("%s: span context %v", tc.name, sc)
			}
			if got := sc.TraceState().String(); got != tc.state {
				t.Errorf("%s: tracestate %q, want %q", tc.name, got, tc.state)
			}
		}
	}
}

// FuzzTraceParseMeta: no input makes ParseMeta or HopTraced panic, and only MetaOK comes with
// a valid span context.
func FuzzTraceParseMeta(f *testing.F) {
	f.Add([]byte(`{"traceparent":"` + validTP + `","tracestate":"a=1"}`))
	f.Add([]byte(`{"traceparent":{"a":[1,2]},"fame-trace-hop":"v1"}`))
	f.Add([]byte(`{"traceparent":"00-`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, st := ParseMeta(b)
		if sc.IsValid() != (st == MetaOK) {
			t.Fatalf("status %v, valid %v", st, sc.IsValid())
		}
		_ = HopTraced(b)
	})
}

func TestTraceMetaForRoundTrip(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ts, _ := trace.ParseTraceState("k=v")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	meta := MetaFor(trace.ContextWithSpanContext(context.Background(), sc))
	if string(meta) != `{"traceparent":"`+validTP+`","tracestate":"k=v"}` {
		t.Fatalf("MetaFor = %s", meta)
	}
	back, st := ParseMeta(meta)
	if st != MetaOK || back.TraceID() != tid || back.SpanID() != sid || back.TraceState().String() != "k=v" {
		t.Fatalf("round trip: %v %v", back, st)
	}
	if MetaFor(context.Background()) != nil {
		t.Fatal("MetaFor without a span is not nil")
	}
}

// TestTraceIDFromEnvelope: the reference's derivation (its first 16 characters as bytes,
// padded with '0').
func TestTraceIDFromEnvelope(t *testing.T) {
	id := TraceIDFromEnvelope([]byte("0SAewbLMrFlL3GIR"))
	if got := hex.EncodeToString(id[:]); got != hex.EncodeToString([]byte("0SAewbLMrFlL3GIR")) {
		t.Fatalf("got %s", got)
	}
	short := TraceIDFromEnvelope([]byte("abc"))
	if string(short[:]) != "abc0000000000000" {
		t.Fatalf("short: %q", short[:])
	}
	if TraceIDFromEnvelope(nil).IsValid() {
		t.Fatal("empty traceId gave a valid id")
	}
}

func TestTraceHopSpanID(t *testing.T) {
	p1, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	p2, _ := trace.SpanIDFromHex("b7ad6b7169203332")
	a, b := HopSpanID(p1, []byte("env1")), HopSpanID(p1, []byte("env1"))
	if a != b || !a.IsValid() {
		t.Fatalf("not deterministic or invalid: %v %v", a, b)
	}
	if HopSpanID(p1, []byte("env2")) == a || HopSpanID(p2, []byte("env1")) == a || a == p1 {
		t.Fatal("different inputs, same id")
	}
}

func TestTraceHopTraced(t *testing.T) {
	if !HopTraced(AttachAckMeta()) || !HopTraced([]byte(`{"a":1,"fame-trace-hop":"v1"}`)) {
		t.Fatal("announcement not read")
	}
	for _, m := range []string{``, `{}`, `{"fame-trace-hop":"v2"}`, `{"fame-trace-hop":true}`, `{"x":{"fame-trace-hop":"v1"}}`} {
		if HopTraced([]byte(m)) {
			t.Fatalf("%s read as an announcement", m)
		}
	}
}

// newTestTracer is a tracer that records synchronously into an in-memory exporter.
func newTestTracer(ratio float64) (*Tracer, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	return newTracer(Config{SampleRatio: ratio, ServiceName: "test"}, sdktrace.WithSyncer(exp)), exp
}

// TestTraceHopSpans: the route span takes the meta's traceparent as parent and the derived
// id; without one it is a root in the envelope's derived trace; the serve span parents on
// the route span when the sentinel announced hop spans, else on the sender's span.
func TestTraceHopSpans(t *testing.T) {
	tr, exp := newTestTracer(1)
	meta := []byte(`{"traceparent":"` + validTP + `"}`)
	span, st := tr.StartHop(meta, []byte("TRACEID123456789"), []byte("ENV1"))
	span.End()
	if st != MetaOK {
		t.Fatalf("status %v", st)
	}
	parent, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	got := exp.GetSpans()[0]
	if got.Parent.SpanID() != parent || got.SpanContext.SpanID() != HopSpanID(parent, []byte("ENV1")) ||
		got.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("route span %v parent %v", got.SpanContext, got.Parent)
	}
	exp.Reset()
	span, _ = tr.StartHop(nil, []byte("TRACEID123456789"), []byte("ENV1"))
	span.End()
	got = exp.GetSpans()[0]
	if got.Parent.IsValid() || got.SpanContext.TraceID() != TraceIDFromEnvelope([]byte("TRACEID123456789")) {
		t.Fatalf("root route span %v parent %v", got.SpanContext, got.Parent)
	}
	for _, hop := range []bool{true, false} {
		exp.Reset()
		ctx, span, _ := tr.StartServe(context.Background(), meta, "T", "ENV1", hop)
		_, child := tr.Start(ctx, "user")
		child.End()
		span.End()
		spans := exp.GetSpans()
		serve, user := spans[1], spans[0]
		want := parent
		if hop {
			want = HopSpanID(parent, []byte("ENV1"))
		}
		if serve.Parent.SpanID() != want {
			t.Fatalf("hop=%v: serve parent %v, want %v", hop, serve.Parent.SpanID(), want)
		}
		if user.Parent.SpanID() != serve.SpanContext.SpanID() || user.SpanContext.SpanID() == serve.SpanContext.SpanID() {
			t.Fatalf("hop=%v: a span under the serve context is not its child with its own id", hop)
		}
	}
}

// TestTraceSamplerIgnoresRemoteFlag: a remote "sampled" flag does not force recording; the
// ratio decides by the trace id, the same way in every process (a root and a remote child of
// the same trace decide alike).
func TestTraceSamplerIgnoresRemoteFlag(t *testing.T) {
	tr, _ := newTestTracer(0.25)
	sampled, agree := 0, 0
	const n = 2000
	for i := 0; i < n; i++ {
		tid := randomTraceID()
		root := tr.StartRoot("r", nil) // random id: exercise the root decision on its own
		root.End()
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: randomSpanID(), TraceFlags: trace.FlagsSampled, Remote: true})
		_, child := tr.tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), sc), "c")
		_, rootSame := tr.tr.Start(withForced(context.Background(), forcedIDs{trace: tid}), "r2")
		if child.IsRecording() {
			sampled++
		}
		if child.IsRecording() == rootSame.IsRecording() {
			agree++
		}
		child.End()
		rootSame.End()
	}
	if sampled < n/8 || sampled > n*3/8 {
		t.Fatalf("%d of %d remote-sampled spans recorded at ratio 0.25", sampled, n)
	}
	if agree != n {
		t.Fatalf("root and remote child of the same trace decided differently %d times", n-agree)
	}
}

func TestTraceOffIsNil(t *testing.T) {
	tr, err := Setup(context.Background(), Config{})
	if err != nil || tr != nil {
		t.Fatalf("Setup without endpoint = %v, %v", tr, err)
	}
	// Every method of the nil tracer is a no-op.
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, st := tr.StartHop([]byte(`{}`), nil, nil); s != nil || st != MetaAbsent {
		t.Fatal("nil tracer started a span")
	}
	if _, err := Setup(context.Background(), Config{Endpoint: "collector:4318"}); err == nil {
		t.Fatal("endpoint without scheme accepted")
	}
	if _, err := Setup(context.Background(), Config{Endpoint: "http://c:4318", SampleRatio: 2}); err == nil {
		t.Fatal("ratio 2 accepted")
	}
	if got := (Config{Endpoint: "http://c:4318/"}).URL(); got != "http://c:4318/v1/traces" {
		t.Fatalf("URL = %s", got)
	}
}
