// Package tracing is fame-go's OpenTelemetry tracing: the provider, the OTLP/HTTP exporter,
// the sampler and the W3C trace context carried in an envelope's meta.
//
// Off unless configured. Setup returns nil for a Config without an endpoint, and every
// method of a nil *Tracer is a no-op, so the sentinel and the node check one pointer on
// their hot paths and allocate nothing when tracing is off. The library reads no
// environment variable: config/ and cmd/ turn OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and the YAML `tracing:` block into a Config, and the
// program hands the Tracer to the sentinel (sentinel.WithTracer) or the node
// (node.Config.Tracer) and calls Shutdown last, which flushes the spans still batched.
//
// Trace context on the wire. The sender of an envelope puts W3C `traceparent` (and
// `tracestate`) in the envelope's meta: {"traceparent":"00-<trace>-<span>-01"}. meta is not
// covered by the overlay signature (security.md), so adding it does not change what a
// signature covers, and the sentinel never rewrites it: it forwards the bytes it received.
// The reference runtimes (TS and Python) put no trace context in meta; their
// OpenTelemetryTraceEmitter derives the OpenTelemetry trace id from the envelope's traceId
// (its 16 characters as the 16 bytes of the id). An envelope without a valid traceparent is
// traced here the same way (TraceIDFromEnvelope), so spans of reference peers and of
// fame-go land in one trace id.
//
// Hops. The sentinel cannot tell the next hop its span id without rewriting the envelope, so
// the id of its route span is derived: HopSpanID(sender's span id, envelope id). A sentinel
// that records route spans says so in the meta of its NodeAttachAck (MetaHopKey); a Go node
// attached to such a sentinel parents its serve span on the derived id, so the trace reads
// client call -> sentinel route -> replica serve. Attached to a sentinel that does not say
// so (tracing off, the reference sentinel), the serve span is the call span's child.
//
// Untrusted input. A traceparent is read only from a top-level, unescaped string member of
// meta, at most MaxTraceparent bytes (tracestate at most MaxTracestate, else dropped), parsed
// by the W3C propagator; anything else is ignored (counted by the caller) and never changes
// routing. A remote "sampled" flag does not force sampling: the sampler applies the
// configured ratio to remote parents too, keyed by a hash of the trace id, so every hop takes
// the same decision for a trace and a peer cannot make the sentinel export every envelope.
package tracing
