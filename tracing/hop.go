package tracing

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// Span names of fame-go's hops.
const (
	SpanRoute  = "fame.sentinel.route"
	SpanAttach = "fame.sentinel.attach"
	SpanRepin  = "fame.sentinel.repin"
	SpanCall   = "fame.node.call"
	SpanServe  = "fame.node.serve"
)

// StartHop starts the sentinel's span for routing one envelope. Its parent is the meta's
// traceparent, and its id HopSpanID(parent, envID); without a valid traceparent it is a root
// span in the trace the reference derives from the envelope's traceId. The status says what
// meta held, for the caller to count; a bad traceparent is otherwise ignored.
func (t *Tracer) StartHop(meta, envTraceID, envID []byte) (trace.Span, MetaStatus) {
	if t == nil {
		return nil, MetaAbsent
	}
	ctx := context.Background()
	var st MetaStatus
	var sc trace.SpanContext
	if len(meta) > 0 {
		sc, st = ParseMeta(meta)
	}
	if sc.IsValid() {
		ctx = withForced(trace.ContextWithRemoteSpanContext(ctx, sc), forcedIDs{span: HopSpanID(sc.SpanID(), envID)})
	} else if tid := TraceIDFromEnvelope(envTraceID); tid.IsValid() {
		ctx = withForced(ctx, forcedIDs{trace: tid})
	}
	_, span := t.tr.Start(ctx, SpanRoute, trace.WithSpanKind(trace.SpanKindInternal))
	return span, st
}

// StartRoot starts a span of the sentinel's own (attach, re-pin), in the trace derived from
// envTraceID when there is one.
func (t *Tracer) StartRoot(name string, envTraceID []byte) trace.Span {
	if t == nil {
		return nil
	}
	ctx := context.Background()
	if tid := TraceIDFromEnvelope(envTraceID); tid.IsValid() {
		ctx = withForced(ctx, forcedIDs{trace: tid})
	}
	_, span := t.tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
	return span
}

// StartCall starts the caller's span of one call, as a child of the span in ctx; without
// one, as the root of the trace the reference derives from the envelope's traceId (so that
// reference peers on the way record into the same trace). Put MetaFor(the returned context)
// in the request's meta.
func (t *Tracer) StartCall(ctx context.Context, envTraceID string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	start := ctx
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if tid := TraceIDFromEnvelope([]byte(envTraceID)); tid.IsValid() {
			start = withForced(ctx, forcedIDs{trace: tid})
		}
	}
	_, span := t.tr.Start(start, SpanCall, trace.WithSpanKind(trace.SpanKindClient))
	// The forced ids stay out of the context handed back: spans started under it are random.
	return trace.ContextWithSpan(ctx, span), span
}

// StartServe starts the serving node's span for one request: a child of the meta's
// traceparent, or of the sentinel's route span when hopTraced (the sentinel said it records
// one, with a HopSpanID id); without a valid traceparent, in the trace derived from the
// envelope's traceId. ctx carries the span for the operation's own spans.
func (t *Tracer) StartServe(ctx context.Context, meta []byte, envTraceID, envID string, hopTraced bool) (context.Context, trace.Span, MetaStatus) {
	if t == nil {
		return ctx, nil, MetaAbsent
	}
	start := ctx
	var st MetaStatus
	var sc trace.SpanContext
	if len(meta) > 0 {
		sc, st = ParseMeta(meta)
	}
	if sc.IsValid() {
		if hopTraced {
			sc = sc.WithSpanID(HopSpanID(sc.SpanID(), []byte(envID)))
		}
		start = trace.ContextWithRemoteSpanContext(ctx, sc)
	} else if tid := TraceIDFromEnvelope([]byte(envTraceID)); tid.IsValid() {
		start = withForced(ctx, forcedIDs{trace: tid})
	}
	_, span := t.tr.Start(start, SpanServe, trace.WithSpanKind(trace.SpanKindServer))
	return trace.ContextWithSpan(ctx, span), span, st
}
