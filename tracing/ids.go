package tracing

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TraceIDFromEnvelope is the OpenTelemetry trace id the reference runtimes give the spans of
// an envelope with this traceId: its first 16 characters (padded with '0') as the 16 bytes of
// the id. The zero (invalid) id for an empty traceId.
func TraceIDFromEnvelope(traceID []byte) trace.TraceID {
	var id trace.TraceID
	if len(traceID) == 0 {
		return id
	}
	for i := range id {
		id[i] = '0'
		if i < len(traceID) {
			id[i] = traceID[i]
		}
	}
	return id
}

// HopSpanID is the span id of the sentinel's route span for the envelope envID sent under
// the span parent: derived, so that the next hop can name it as its parent without the
// sentinel rewriting the envelope (see the package doc). FNV-1a over both, never zero.
func HopSpanID(parent trace.SpanID, envID []byte) trace.SpanID {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range parent {
		h ^= uint64(b)
		h *= prime
	}
	h ^= 0xfe // separator: parent ids are fixed-length, but keep the domains apart
	h *= prime
	for _, b := range envID {
		h ^= uint64(b)
		h *= prime
	}
	if h == 0 {
		h = 1
	}
	var id trace.SpanID
	binary.BigEndian.PutUint64(id[:], h)
	return id
}

// forcedIDs in a context make the id generator use these ids for the next span started with
// it (zero fields: random).
type forcedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

type forcedKey struct{}

func withForced(ctx context.Context, f forcedIDs) context.Context {
	return context.WithValue(ctx, forcedKey{}, f)
}

// idGenerator is the SDK's random generator plus forced ids (derived trace ids of envelopes
// without traceparent, derived hop span ids).
type idGenerator struct{}

var _ sdktrace.IDGenerator = idGenerator{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	f, _ := ctx.Value(forcedKey{}).(forcedIDs)
	tid, sid := f.trace, f.span
	if !tid.IsValid() {
		tid = randomTraceID()
	}
	if !sid.IsValid() {
		sid = randomSpanID()
	}
	return tid, sid
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if f, ok := ctx.Value(forcedKey{}).(forcedIDs); ok && f.span.IsValid() {
		return f.span
	}
	return randomSpanID()
}

func randomTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func randomSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// ratioSampler samples a trace when a hash of its id falls under the ratio. A hash rather
// than the id's low bits (the SDK's TraceIDRatioBased): ids derived from an envelope traceId
// are printable ASCII, whose bytes would skew the SDK's decision.
type ratioSampler struct {
	all   bool
	bound uint64
}

func newSampler(ratio float64) sdktrace.Sampler {
	s := ratioSampler{all: ratio <= 0 || ratio >= 1}
	if !s.all {
		s.bound = uint64(ratio * math.Exp2(64))
	}
	// The ratio applies to remote sampled parents as well: a peer's "sampled" flag does not
	// make this process record every envelope; with one ratio fabric-wide, every hop decides
	// the same for a trace (the hash of its id). Local parents are followed.
	return sdktrace.ParentBased(s, sdktrace.WithRemoteParentSampled(s))
}

func (s ratioSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	d := sdktrace.Drop
	if s.all || traceHash(p.TraceID) < s.bound {
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
}

func (s ratioSampler) Description() string {
	if s.all {
		return "FameRatio{1}"
	}
	return "FameRatio{" + formatRatio(float64(s.bound)/math.Exp2(64)) + "}"
}

func traceHash(id trace.TraceID) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range id {
		h ^= uint64(b)
		h *= prime
	}
	// FNV's low bits mix poorly into the high ones: a final avalanche (splitmix64).
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
