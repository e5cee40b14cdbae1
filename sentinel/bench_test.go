package sentinel

import (
	"fmt"
	"testing"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
)

// benchSentinel builds a sentinel with attached fake connections (no sockets): what is measured
// is the router's own work per envelope — header parse, route lookup, sticky pick, re-stamp,
// enqueue.
func benchSentinel(b *testing.B, env map[string]string, replicas int) (*Sentinel, *conn, []*conn) {
	b.Helper()
	get := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	opts, err := LoadOptions("", config.Getenv(get))
	if err != nil {
		b.Fatal(err)
	}
	opts.SendQueue = 1 << 16
	// The fake connections never read, so the idle sweeper would close them (and their nil
	// sockets) in a run longer than IdleTimeout/4.
	opts.IdleTimeout = 0
	s, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.sticky.close() })
	mk := func(id string, logicals ...string) *conn {
		c := newConn(s, nil, "bench", id, "downstream")
		c.systemID, c.path, c.logicals = id, s.path+"/"+id, logicals
		c.sid = envelope.SecureDigest(c.path)
		s.routes.attach(c)
		drainQueue(c) // as the writer goroutines would
		return c
	}
	client := mk("client", "*")
	var reps []*conn
	for i := 0; i < replicas; i++ {
		r := mk(fmt.Sprintf("replica%d", i), "*.fame.fabric")
		a, _ := envelope.ParseAddress("math@*.fame.fabric")
		if replicas == 1 {
			a, _ = envelope.ParseAddress("math@fame.fabric")
		}
		s.routes.bind(r, a)
		reps = append(reps, r)
	}
	return s, client, reps
}

func benchRequest(client *conn) []byte {
	e, _ := envelope.New(&envelope.Data{Payload: []byte(`{"jsonrpc":"2.0","id":"34peIerZWNdPWWkW","method":"add","params":{"x":3,"y":4,"note":"padding to bring the envelope to a typical size of about five hundred bytes"}}`)})
	e.SID, e.TraceID, e.To = client.sid, envelope.NewID(), "math@fame.fabric"
	e.ReplyTo, e.RType, e.CorrID, e.FlowID = "__rpc__"+envelope.NewID()+"@"+client.path, envelope.RTypeReply, envelope.NewID(), envelope.NewID()
	b, _ := e.Marshal()
	return b
}

func benchDispatch(b *testing.B, env map[string]string, replicas int) {
	s, client, _ := benchSentinel(b, env, replicas)
	msg := benchRequest(client)
	var h envelope.Header
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := envelope.ParseHeader(msg, &h); err != nil {
			b.Fatal(err)
		}
		s.dispatch(client, msg, &h)
	}
}

// BenchmarkDispatchExact: a request to an exactly bound address.
func BenchmarkDispatchExact(b *testing.B) { benchDispatch(b, nil, 1) }

// BenchmarkDispatchPoolSticky: a request to a 3-replica pool with stickiness on (binding hit).
func BenchmarkDispatchPoolSticky(b *testing.B) { benchDispatch(b, nil, 3) }

// BenchmarkDispatchPoolNoSticky: the same pool, HRW per envelope.
func BenchmarkDispatchPoolNoSticky(b *testing.B) {
	benchDispatch(b, map[string]string{"FAME_STICKINESS": "off"}, 3)
}

// BenchmarkDispatchReply: a reply routed by physical path back to the client.
func BenchmarkDispatchReply(b *testing.B) {
	s, client, reps := benchSentinel(b, nil, 1)
	e, _ := envelope.New(&envelope.Data{Payload: []byte(`{"jsonrpc":"2.0","id":"34peIerZWNdPWWkW","result":7}`)})
	e.SID, e.TraceID, e.To, e.CorrID, e.FlowID = reps[0].sid, envelope.NewID(), "__rpc__x@"+client.path, envelope.NewID(), envelope.NewID()
	msg, _ := e.Marshal()
	var h envelope.Header
	b.ReportAllocs()
	for b.Loop() {
		if err := envelope.ParseHeader(msg, &h); err != nil {
			b.Fatal(err)
		}
		s.dispatch(reps[0], msg, &h)
	}
}

// benchResolve measures the route decision alone (no queue, no writer goroutine): route-table
// lookups, the sticky pick and the resolution of a physical path.
func benchResolve(b *testing.B, env map[string]string, replicas int, to func(client *conn) string) {
	s, client, _ := benchSentinel(b, env, replicas)
	msg := benchRequest(client)
	var h envelope.Header
	if err := envelope.ParseHeader(msg, &h); err != nil {
		b.Fatal(err)
	}
	dest := []byte(to(client))
	b.ReportAllocs()
	for b.Loop() {
		if dst, _ := s.resolve(client, &h, dest); dst == nil {
			b.Fatal("no route")
		}
	}
}

func BenchmarkResolveExact(b *testing.B) {
	benchResolve(b, nil, 1, func(*conn) string { return "math@fame.fabric" })
}

func BenchmarkResolvePoolSticky(b *testing.B) {
	benchResolve(b, nil, 3, func(*conn) string { return "math@fame.fabric" })
}

func BenchmarkResolvePoolNoSticky(b *testing.B) {
	benchResolve(b, map[string]string{"FAME_STICKINESS": "off"}, 3, func(*conn) string { return "math@fame.fabric" })
}

func BenchmarkResolvePath(b *testing.B) {
	benchResolve(b, nil, 1, func(c *conn) string { return "__rpc__x@" + c.path })
}
