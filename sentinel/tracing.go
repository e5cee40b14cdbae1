package sentinel

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/tracing"
)

// WithTracer turns OpenTelemetry tracing on: a span per routed envelope (the route span, with
// the chosen replica and whether stickiness decided), per attach and per re-pin. nil (the
// default) is off, and then routing checks one pointer and allocates nothing for tracing.
// The sentinel never writes trace context into what it forwards (package tracing).
func WithTracer(t *tracing.Tracer) Option { return func(s *Sentinel) { s.tracer = t } }

// traceMetrics counts the trace contexts found in meta that were ignored, by reason.
type traceMetrics struct {
	ignored *prometheus.CounterVec
}

func newTraceMetrics(reg prometheus.Registerer) *traceMetrics {
	m := &traceMetrics{ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fame_trace_context_ignored_total",
		Help: "Envelopes whose meta traceparent was ignored (invalid, oversize, duplicate); the envelope was routed unchanged.",
	}, []string{"reason"})}
	reg.MustRegister(m.ignored)
	for _, st := range []tracing.MetaStatus{tracing.MetaInvalid, tracing.MetaOversize, tracing.MetaDuplicate} {
		m.ignored.WithLabelValues(st.String())
	}
	return m
}

// routeTrace collects what the route span reports; route fills it only when tracing is on.
type routeTrace struct {
	dst    peer
	sticky bool
}

// Route outcomes (the route span's fame.route.outcome).
const (
	outForwarded     = "forwarded"
	outNoRoute       = "no_route"
	outLocal         = "local"
	outChannelClosed = "channel_closed"
	outLoop          = "loop"
	outDraining      = "draining"
	outOverloaded    = "overloaded"
	outClosed        = "route_closed"
	outRefused       = "refused"
	outRateLimited   = "rate_limited"
)

// routeTraced is route with its span.
func (s *Sentinel) routeTraced(src *conn, msg []byte, h *envelope.Header, dest []byte) {
	span, st := s.tracer.StartHop(h.Meta, h.TraceID, h.ID)
	if st.Bad() {
		s.traceMx.ignored.WithLabelValues(st.String()).Inc()
		src.log.Debug("ignoring the trace context in meta; routing the envelope unchanged",
			"reason", st.String(), "id", string(h.ID))
	}
	var tr routeTrace
	out := s.routeOnce(src, msg, h, dest, &tr)
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String("env.id", string(h.ID)),
			attribute.String("env.trace_id", string(h.TraceID)),
			attribute.String("env.to", string(dest)),
			attribute.String("env.frame_type", string(h.FrameType)),
			attribute.String("fame.route.source", src.systemID),
			attribute.String("fame.route.outcome", out),
			attribute.Bool("fame.route.sticky", tr.sticky),
		}
		if len(h.CorrID) > 0 {
			attrs = append(attrs, attribute.String("env.corr_id", string(h.CorrID)))
		}
		if tr.dst != nil {
			attrs = append(attrs, attribute.String("fame.route.replica", tr.dst.ident().systemID))
		}
		if st.Bad() {
			attrs = append(attrs, attribute.String("fame.trace_context.ignored", st.String()))
		}
		span.SetAttributes(attrs...)
		if out != outForwarded {
			span.SetStatus(codes.Error, out)
		}
	}
	span.End()
}

// traceAttach records the attach span of c (err: why it was refused).
func (s *Sentinel) traceAttach(c *conn, traceID []byte, err error) {
	span := s.tracer.StartRoot(tracing.SpanAttach, traceID)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("fame.system_id", c.urlID), attribute.String("fame.path", c.path),
			attribute.String("fame.origin", c.origin), attribute.String("net.peer.address", c.remote))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// attachTraceID reads the traceId of a NodeAttach for its span (nil when unreadable).
func attachTraceID(msg []byte) []byte {
	var h envelope.Header
	if envelope.ParseHeader(msg, &h) != nil {
		return nil
	}
	return h.TraceID
}

// traceRepin records the re-pin of the sessions of a lost replica.
func traceRepin(t *tracing.Tracer, replica string, sessions, closes int) {
	if t == nil {
		return
	}
	span := t.StartRoot(tracing.SpanRepin, nil)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("fame.replica", replica), attribute.Int("fame.repin.sessions", sessions),
			attribute.Int("fame.repin.secure_close_sent", closes))
	}
	span.End()
}
