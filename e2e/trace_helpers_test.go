package e2e

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/internal/syncbuf"
	"github.com/fame-go/fame/sentinel"
	"github.com/fame-go/fame/tracing"
)

// otlpReceiver is a real OTLP/HTTP trace receiver: it decodes the protobuf export requests
// POSTed to /v1/traces and keeps every span.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []gotSpan
	bad   []string // requests it could not decode
}

// gotSpan is one received span, ids in hex.
type gotSpan struct {
	service, name          string
	traceID, spanID, pspan string
	attrs                  map[string]string
	errStatus              bool
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.handle)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) handle(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.fail(w, "gzip: "+err.Error())
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		r.fail(w, "read: "+err.Error())
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.fail(w, "content type "+ct)
		return
	}
	var ex collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &ex); err != nil {
		r.fail(w, "protobuf: "+err.Error())
		return
	}
	var got []gotSpan
	for _, rs := range ex.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				g := gotSpan{service: service, name: sp.GetName(), traceID: hex.EncodeToString(sp.GetTraceId()),
					spanID: hex.EncodeToString(sp.GetSpanId()), pspan: hex.EncodeToString(sp.GetParentSpanId()),
					attrs: map[string]string{}, errStatus: sp.GetStatus().GetCode() == 2}
				for _, kv := range sp.GetAttributes() {
					g.attrs[kv.GetKey()] = anyString(kv.GetValue())
				}
				got = append(got, g)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	}
	return v.String()
}

func (r *otlpReceiver) fail(w http.ResponseWriter, why string) {
	r.mu.Lock()
	r.bad = append(r.bad, why)
	r.mu.Unlock()
	http.Error(w, why, http.StatusBadRequest)
}

// find returns the received spans that match.
func (r *otlpReceiver) find(match func(gotSpan) bool) []gotSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []gotSpan
	for _, s := range r.spans {
		if match(s) {
			out = append(out, s)
		}
	}
	return out
}

func (r *otlpReceiver) badRequests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// tracer is a tracer of service that exports to this receiver (flushed and shut down at the
// end of the test).
func (r *otlpReceiver) tracer(t *testing.T, service string) *tracing.Tracer {
	t.Helper()
	tr, err := tracing.Setup(context.Background(), tracing.Config{TracesEndpoint: r.srv.URL + "/v1/traces",
		ServiceName: service, BatchTimeout: 50 * time.Millisecond})
	if err != nil || tr == nil {
		t.Fatalf("tracing.Setup: %v (%v)", err, tr)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Shutdown(ctx)
	})
	return tr
}

// flush exports everything the tracers have finished.
func flush(t *testing.T, trs ...*tracing.Tracer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tr := range trs {
		if err := tr.ForceFlush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// newTracedFabric is newFabric with a tracing sentinel (the harness's start takes no tracer).
// It is not restartable.
func newTracedFabric(t *testing.T, env map[string]string, tr *tracing.Tracer) *fabric {
	t.Helper()
	f := &fabric{t: t, env: env, logs: &syncbuf.Buffer{}}
	get := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	opts, err := sentinel.LoadOptions("", config.Getenv(get))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := sentinel.New(opts, sentinel.WithLogger(log), sentinel.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr, f.s = l.Addr().String(), s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, l); close(done) }()
	var once sync.Once
	f.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(func() { f.stop() })
	return f
}
