package config

import (
	"fmt"
	"strings"

	"github.com/fame-go/fame/tracing"
)

// TracingEnv is what the OpenTelemetry variables say about tracing (their standard names;
// fame-go reads these five). Empty or nil: not set.
type TracingEnv struct {
	Endpoint       string   // OTEL_EXPORTER_OTLP_ENDPOINT: OTLP/HTTP base URL (+ /v1/traces)
	TracesEndpoint string   // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the traces URL as it is
	ServiceName    string   // OTEL_SERVICE_NAME
	SampleRatio    *float64 // OTEL_TRACES_SAMPLER_ARG
	Disabled       bool     // OTEL_SDK_DISABLED=true: off whatever else says
}

// TracingFromEnv reads the tracing variables; malformed values are returned as problems.
func TracingFromEnv(env Getenv) (TracingEnv, []string) {
	e := &vars{env: env}
	t := TracingEnv{
		Endpoint:       strings.TrimSpace(e.str("OTEL_EXPORTER_OTLP_ENDPOINT")),
		TracesEndpoint: strings.TrimSpace(e.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
		ServiceName:    e.str("OTEL_SERVICE_NAME"),
		SampleRatio:    e.float("OTEL_TRACES_SAMPLER_ARG"),
	}
	if b := e.boolean("OTEL_SDK_DISABLED"); b != nil {
		t.Disabled = *b
	}
	return t, e.problems
}

// Apply lays the variables over a configuration from a file (the variables win) and checks
// the result.
func (t TracingEnv) Apply(c tracing.Config) (tracing.Config, error) {
	if t.Endpoint != "" {
		c.Endpoint = t.Endpoint
	}
	if t.TracesEndpoint != "" {
		c.TracesEndpoint = t.TracesEndpoint
	}
	if t.ServiceName != "" {
		c.ServiceName = t.ServiceName
	}
	if t.SampleRatio != nil {
		c.SampleRatio = *t.SampleRatio
	}
	if t.Disabled {
		return tracing.Config{}, nil
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// NodeTracing is the tracing configuration of a Go SDK program from its environment
// (tracing.Setup it, put the Tracer in node.Config.Tracer, Shutdown it after Close).
// serviceName is used when OTEL_SERVICE_NAME is unset.
func NodeTracing(env Getenv, serviceName string) (tracing.Config, error) {
	t, problems := TracingFromEnv(env)
	if len(problems) > 0 {
		return tracing.Config{}, fmt.Errorf("%w: %s", tracing.ErrConfig, strings.Join(problems, "; "))
	}
	return t.Apply(tracing.Config{ServiceName: serviceName})
}
