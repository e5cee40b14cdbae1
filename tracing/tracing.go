package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config says where spans go. The zero Config is tracing off.
type Config struct {
	// Endpoint is the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT, e.g.
	// http://collector:4318); spans are POSTed to Endpoint + "/v1/traces".
	Endpoint string
	// TracesEndpoint is the full URL of the traces endpoint
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); it wins over Endpoint and is used as it is.
	TracesEndpoint string
	// SampleRatio is the fraction of traces recorded, in (0, 1]; 0 means 1. To record
	// nothing, leave the endpoints empty.
	SampleRatio float64
	// ServiceName is the resource's service.name; "fame" when empty.
	ServiceName string
	// ExportTimeout bounds one export request (default 10 s); BatchTimeout is the longest a
	// finished span waits to be exported (default 1 s).
	ExportTimeout time.Duration
	BatchTimeout  time.Duration
}

// Ratio is the sample ratio in effect (SampleRatio, 0 meaning 1).
func (c Config) Ratio() float64 {
	if c.SampleRatio <= 0 || c.SampleRatio > 1 {
		return 1
	}
	return c.SampleRatio
}

// Enabled reports whether c asks for tracing.
func (c Config) Enabled() bool { return c.Endpoint != "" || c.TracesEndpoint != "" }

// URL is the traces endpoint spans are sent to.
func (c Config) URL() string {
	if c.TracesEndpoint != "" {
		return c.TracesEndpoint
	}
	return strings.TrimRight(c.Endpoint, "/") + "/v1/traces"
}

// ErrConfig marks an invalid tracing configuration.
var ErrConfig = errors.New("tracing: invalid configuration")

// Validate reports the first problem Setup would refuse c for.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	u, err := url.Parse(c.URL())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: OTLP endpoint %q must be an http:// or https:// URL", ErrConfig, c.URL())
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("%w: sample_ratio %v must lie in [0, 1]", ErrConfig, c.SampleRatio)
	}
	return nil
}

// Tracer records fame-go's spans. A nil *Tracer is tracing off: every method is a no-op.
type Tracer struct {
	tp *sdktrace.TracerProvider
	tr trace.Tracer
}

// instrumentation is the instrumentation scope of every span fame-go records.
const instrumentation = "github.com/fame-go/fame"

// Setup builds the tracer Config asks for, or returns nil (tracing off) for a Config without
// an endpoint. Spans are batched and exported in the background by the SDK's own goroutine;
// call Shutdown to flush and stop it.
func Setup(ctx context.Context, c Config) (*Tracer, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.ExportTimeout <= 0 {
		c.ExportTimeout = 10 * time.Second
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = time.Second
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.URL()), otlptracehttp.WithTimeout(c.ExportTimeout))
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP/HTTP exporter for %s: %w", c.URL(), err)
	}
	return newTracer(c, sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(c.BatchTimeout))), nil
}

// newTracer builds the provider around a span processor (Setup's batcher; tests may pass a
// synchronous one).
func newTracer(c Config, proc sdktrace.TracerProviderOption) *Tracer {
	name := c.ServiceName
	if name == "" {
		name = "fame"
	}
	// Attribute values come from envelopes (addresses, ids): bounded so that a peer cannot
	// make one span large.
	limits := sdktrace.NewSpanLimits()
	limits.AttributeValueLengthLimit = maxAttrLen
	limits.AttributeCountLimit = 32
	tp := sdktrace.NewTracerProvider(proc,
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		sdktrace.WithSampler(newSampler(c.SampleRatio)),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithSpanLimits(limits),
	)
	return &Tracer{tp: tp, tr: tp.Tracer(instrumentation)}
}

// maxAttrLen bounds every string attribute of a span.
const maxAttrLen = 256

// Shutdown exports the spans still batched and stops the exporter; ctx bounds the wait.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// ForceFlush exports every finished span now.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Start starts a span as a child of the span in ctx (a plain OpenTelemetry span, for
// program code around fame calls).
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.tr.Start(ctx, name, opts...)
}

// NewWithExporter is a tracer that hands every finished span to exp synchronously (no
// batching): for tests and for programs that bring their own exporter. c's endpoints are
// not used.
func NewWithExporter(c Config, exp sdktrace.SpanExporter) *Tracer {
	return newTracer(c, sdktrace.WithSyncer(exp))
}
