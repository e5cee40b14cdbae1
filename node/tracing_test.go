package node

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/tracing"
)

// TestTraceCallAndServe: a traced call sends its span's traceparent in the request's meta;
// the agent's serve span is its child (the fake sentinel announces no route spans) and the
// reply carries the serve span's context; a failed call's span says so.
func TestTraceCallAndServe(t *testing.T) {
	f := newFakeSentinel(t)
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(tracing.Config{}, exp)
	_, client := agentAndClient(t, f, func(c *Config) { c.Tracer = tr })
	ctx := context.Background()
	var got int
	if err := client.Call(ctx, "math@fame.fabric", "add", map[string]int{"x": 3, "y": 4}, &got); err != nil || got != 7 {
		t.Fatalf("add = %d, %v", got, err)
	}
	var call, serve tracetestSpan
	// The serve span ends when the handler returns, which may be after the caller has its reply.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !serve.sc.IsValid(); time.Sleep(5 * time.Millisecond) {
		for _, s := range exp.GetSpans() {
			switch s.Name {
			case tracing.SpanCall:
				call = tracetestSpan{s.SpanContext, s.Parent, s.Status.Code}
			case tracing.SpanServe:
				serve = tracetestSpan{s.SpanContext, s.Parent, s.Status.Code}
			}
		}
	}
	if !call.sc.IsValid() || !serve.sc.IsValid() {
		t.Fatalf("spans: %v", exp.GetSpans())
	}
	if serve.parent.SpanID() != call.sc.SpanID() || serve.sc.TraceID() != call.sc.TraceID() {
		t.Fatalf("serve span %v has parent %v, want the call span %v", serve.sc, serve.parent, call.sc)
	}
	var req, reply *envelope.Envelope
	for _, e := range f.received(client.SystemID()) {
		if e.FrameType() == envelope.TypeData {
			req = e
		}
	}
	for _, id := range f.childIDs() {
		for _, e := range f.received(id) {
			if e.FrameType() == envelope.TypeData && e.CorrID == req.CorrID && e != req {
				reply = e
			}
		}
	}
	if sc, st := tracing.ParseMeta(req.Meta); st != tracing.MetaOK || sc.SpanID() != call.sc.SpanID() {
		t.Fatalf("request meta %s: %v %v", req.Meta, sc, st)
	}
	if reply == nil {
		t.Fatal("no reply seen at the sentinel")
	}
	if sc, st := tracing.ParseMeta(reply.Meta); st != tracing.MetaOK || sc.SpanID() != serve.sc.SpanID() {
		t.Fatalf("reply meta %s: %v %v", reply.Meta, sc, st)
	}

	exp.Reset()
	if err := client.Call(ctx, "math@fame.fabric", "nope", nil, nil); err == nil {
		t.Fatal("unknown method succeeded")
	}
	failed := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && failed < 2; time.Sleep(5 * time.Millisecond) {
		failed = 0
		for _, s := range exp.GetSpans() {
			if s.Status.Code == codes.Error {
				failed++
			}
		}
	}
	if failed != 2 {
		t.Fatalf("%d spans with an error status for a failed call, want 2 (call and serve)", failed)
	}
}

type tracetestSpan struct {
	sc, parent trace.SpanContext
	code       codes.Code
}

// TestTraceOffSendsNoMeta: without a tracer, requests and replies carry no meta.
func TestTraceOffSendsNoMeta(t *testing.T) {
	f := newFakeSentinel(t)
	agent, client := agentAndClient(t, f, nil)
	var got int
	if err := client.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": 1, "y": 2}, &got); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{client.SystemID(), agent.SystemID()} {
		for _, e := range f.received(id) {
			if e.FrameType() == envelope.TypeData && len(e.Meta) != 0 {
				t.Fatalf("%s sent meta %s with tracing off", id, e.Meta)
			}
		}
	}
}
