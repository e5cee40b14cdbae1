package node

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/tracing"
)

// Tracing (Config.Tracer; package tracing). Everything here runs only with a tracer: the
// call and serve paths check Config.Tracer once and allocate nothing for tracing when off.

// callTrace is a traced call's span (ended by close) and the meta that carries its trace
// context, sent with every (re-)send.
type callTrace struct {
	span trace.Span
	meta []byte
}

// traceCall starts c's span under ctx's and prepares the meta that carries it.
func (n *Node) traceCall(ctx context.Context, c *call) {
	ctx, span := n.cfg.Tracer.StartCall(ctx, c.traceID)
	c.tr = &callTrace{span: span, meta: tracing.MetaFor(ctx)}
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("rpc.method", c.method),
			attribute.String("env.to", c.to),
			attribute.String("env.id", c.id),
			attribute.String("env.trace_id", c.traceID),
			attribute.String("env.corr_id", c.corrID),
			attribute.String("fame.delivery", n.cfg.Delivery),
		)
	}
}

// spanErr marks c's span failed with err (nothing without a span or an error).
func (c *call) spanErr(err error) {
	if c.tr == nil || err == nil {
		return
	}
	c.tr.span.RecordError(err)
	c.tr.span.SetStatus(codes.Error, err.Error())
}

func (c *call) endSpan() {
	if c.tr != nil {
		c.tr.span.End()
	}
}

// traceServe starts the span of serving env (see tracing.Tracer.StartServe); the returned
// context, with the span, is the operation's.
func (n *Node) traceServe(env *envelope.Envelope, req *rpcRequest) (context.Context, trace.Span) {
	hop := n.hopTraced.Load()
	ctx, span, st := n.cfg.Tracer.StartServe(n.ctx, env.Meta, env.TraceID, env.ID, hop)
	if st.Bad() {
		n.log.Debug("ignoring the trace context in meta", "reason", st.String(), "id", env.ID, "from", env.ReplyTo)
	}
	if span.IsRecording() {
		method := ""
		if req != nil {
			method = req.Method
		}
		span.SetAttributes(
			attribute.String("rpc.method", method),
			attribute.String("env.to", env.To),
			attribute.String("env.id", env.ID),
			attribute.String("env.trace_id", env.TraceID),
			attribute.String("env.corr_id", env.CorrID),
			attribute.String("env.reply_to", env.ReplyTo),
			attribute.Bool("fame.hop_traced", hop),
		)
		if st.Bad() {
			span.SetAttributes(attribute.String("fame.trace_context.ignored", st.String()))
		}
	}
	return ctx, span
}
