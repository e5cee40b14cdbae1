package tracing

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/fame-go/fame/internal/jsonscan"
)

// Meta keys of the trace context (W3C Trace Context header names) and of the sentinel's
// announcement that it records a span per hop.
const (
	MetaTraceparent = "traceparent"
	MetaTracestate  = "tracestate"
	MetaHopKey      = "fame-trace-hop"
	MetaHopValue    = "v1"
)

// Bounds on the trace context read from meta. A version-00 traceparent is 55 bytes; later
// versions may append fields. W3C asks vendors to propagate at least 512 bytes of tracestate.
const (
	MaxTraceparent = 128
	MaxTracestate  = 512
)

// MetaStatus says what ParseMeta found.
type MetaStatus uint8

const (
	MetaAbsent    MetaStatus = iota // no traceparent
	MetaOK                          // a valid traceparent
	MetaInvalid                     // not a string, escaped, or not a valid traceparent
	MetaOversize                    // longer than MaxTraceparent
	MetaDuplicate                   // traceparent twice
)

// String is the status as a metric label.
func (s MetaStatus) String() string {
	switch s {
	case MetaAbsent:
		return "absent"
	case MetaOK:
		return "ok"
	case MetaInvalid:
		return "invalid"
	case MetaOversize:
		return "oversize"
	case MetaDuplicate:
		return "duplicate"
	}
	return "unknown"
}

// Bad reports whether a traceparent was present but ignored.
func (s MetaStatus) Bad() bool { return s >= MetaInvalid }

// ParseMeta reads the W3C trace context from an envelope's raw meta object (as
// envelope.Header.Meta or Envelope.Meta hold it). It returns an invalid SpanContext unless
// the status is MetaOK. It never panics on any input and reads meta once, front to back.
func ParseMeta(meta []byte) (trace.SpanContext, MetaStatus) {
	tp, ts, st := scanMeta(meta)
	if st != MetaOK {
		return trace.SpanContext{}, st
	}
	c := carrier{tp: tp, ts: ts}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), &c))
	if !sc.IsValid() {
		return trace.SpanContext{}, MetaInvalid
	}
	return sc, MetaOK
}

// scanMeta finds the top-level traceparent and tracestate strings of meta.
func scanMeta(meta []byte) (tp, ts string, st MetaStatus) {
	i := jsonscan.SkipWS(meta, 0)
	if i >= len(meta) || meta[i] != '{' {
		return "", "", MetaAbsent
	}
	var tpSeen, tsSeen, tsBad bool
	i = jsonscan.SkipWS(meta, i+1)
	for i < len(meta) && meta[i] != '}' {
		kEnd, kEsc, err := jsonscan.ScanString(meta, i)
		if err != nil {
			return "", "", MetaInvalid
		}
		key := meta[i+1 : kEnd-1]
		i = jsonscan.SkipWS(meta, kEnd)
		if i >= len(meta) || meta[i] != ':' {
			return "", "", MetaInvalid
		}
		i = jsonscan.SkipWS(meta, i+1)
		vStart := i
		vEnd, err := jsonscan.SkipValue(meta, i, 0, 64)
		if err != nil {
			return "", "", MetaInvalid
		}
		switch {
		case kEsc:
			// An escaped key could spell traceparent in a way another reader decodes
			// differently; such members are not trace context.
		case string(key) == MetaTraceparent:
			if tpSeen {
				return "", "", MetaDuplicate
			}
			tpSeen = true
			switch v, ok := plainString(meta[vStart:vEnd]); {
			case !ok:
				st = MetaInvalid
			case len(v) > MaxTraceparent:
				st = MetaOversize
			default:
				tp = string(v)
			}
		case string(key) == MetaTracestate:
			if tsSeen {
				tsBad = true
			}
			tsSeen = true
			if v, ok := plainString(meta[vStart:vEnd]); ok && len(v) <= MaxTracestate {
				ts = string(v)
			} else {
				tsBad = true
			}
		}
		i = jsonscan.SkipWS(meta, vEnd)
		if i < len(meta) && meta[i] == ',' {
			i = jsonscan.SkipWS(meta, i+1)
		}
	}
	if !tpSeen {
		return "", "", MetaAbsent
	}
	if st != 0 {
		return "", "", st
	}
	if tsBad {
		ts = "" // a bad tracestate is dropped; the traceparent still holds
	}
	return tp, ts, MetaOK
}

// plainString returns the contents of a JSON string without escapes.
func plainString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	v = v[1 : len(v)-1]
	for _, c := range v {
		if c == '\\' || c < 0x20 {
			return nil, false
		}
	}
	return v, true
}

// HopTraced reports whether a NodeAttachAck's meta says that the sentinel records a route
// span per hop (with HopSpanID ids).
func HopTraced(meta []byte) bool {
	if len(meta) == 0 {
		return false
	}
	i := jsonscan.SkipWS(meta, 0)
	if i >= len(meta) || meta[i] != '{' {
		return false
	}
	i = jsonscan.SkipWS(meta, i+1)
	for i < len(meta) && meta[i] != '}' {
		kEnd, _, err := jsonscan.ScanString(meta, i)
		if err != nil {
			return false
		}
		key := meta[i+1 : kEnd-1]
		i = jsonscan.SkipWS(meta, kEnd)
		if i >= len(meta) || meta[i] != ':' {
			return false
		}
		i = jsonscan.SkipWS(meta, i+1)
		vEnd, err := jsonscan.SkipValue(meta, i, 0, 64)
		if err != nil {
			return false
		}
		if string(key) == MetaHopKey {
			v, ok := plainString(meta[i:vEnd])
			return ok && string(v) == MetaHopValue
		}
		i = jsonscan.SkipWS(meta, vEnd)
		if i < len(meta) && meta[i] == ',' {
			i = jsonscan.SkipWS(meta, i+1)
		}
	}
	return false
}

// AttachAckMeta is the meta a tracing sentinel puts on its NodeAttachAck.
func AttachAckMeta() []byte {
	return []byte(`{"` + MetaHopKey + `":"` + MetaHopValue + `"}`)
}

// MetaFor returns the meta object carrying the trace context of the span in ctx
// ({"traceparent":..., "tracestate":...}), or nil when ctx holds no valid span.
func MetaFor(ctx context.Context) []byte {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	var c carrier
	propagation.TraceContext{}.Inject(ctx, &c)
	if c.tp == "" {
		return nil
	}
	b := make([]byte, 0, 32+len(c.tp)+len(c.ts))
	b = append(b, `{"traceparent":`...)
	b = strconv.AppendQuote(b, c.tp)
	if c.ts != "" && len(c.ts) <= MaxTracestate {
		b = append(b, `,"tracestate":`...)
		b = strconv.AppendQuote(b, c.ts)
	}
	return append(b, '}')
}

// carrier is the two W3C headers, for the propagator.
type carrier struct{ tp, ts string }

func (c *carrier) Get(k string) string {
	switch k {
	case MetaTraceparent:
		return c.tp
	case MetaTracestate:
		return c.ts
	}
	return ""
}

func (c *carrier) Set(k, v string) {
	switch k {
	case MetaTraceparent:
		c.tp = v
	case MetaTracestate:
		c.ts = v
	}
}

func (c *carrier) Keys() []string { return []string{MetaTraceparent, MetaTracestate} }
