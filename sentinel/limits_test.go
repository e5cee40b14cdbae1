package sentinel

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/syncbuf"
)

// offlineSentinel builds a sentinel with socket-less connections: nothing drains their queues
// unless the test does.
func offlineSentinel(t *testing.T, env map[string]string) *Sentinel {
	t.Helper()
	get := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	opts, err := LoadOptions("", config.Getenv(get))
	if err != nil {
		t.Fatal(err)
	}
	opts.IdleTimeout = 0 // no sweeper: it would close these socket-less connections
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.sticky.close() })
	return s
}

func offlineConn(s *Sentinel, id string) *conn {
	c := newConn(s, nil, "offline", id, "downstream")
	c.systemID, c.path = id, s.path+"/"+id
	c.sid = envelope.SecureDigest(c.path)
	s.routes.attach(c)
	return c
}

func request(t *testing.T, from *conn, to string, payload int) ([]byte, *envelope.Header) {
	t.Helper()
	e, _ := envelope.New(&envelope.Data{Payload: []byte(`"` + strings.Repeat("x", payload) + `"`)})
	e.SID, e.TraceID, e.To, e.FlowID = from.sid, envelope.NewID(), to, envelope.NewID()
	e.ReplyTo, e.RType, e.CorrID = "__rpc__x@"+from.path, envelope.RTypeReply, envelope.NewID()
	msg, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var h envelope.Header
	if err := envelope.ParseHeader(msg, &h); err != nil {
		t.Fatal(err)
	}
	return msg, &h
}

// queuedFrames decodes what waits in c's queue.
func queuedFrames(t *testing.T, c *conn) []*envelope.Envelope {
	t.Helper()
	batch := c.q.Take(nil, 1<<20, 1<<30)
	defer c.q.Release(batch)
	var out []*envelope.Envelope
	for _, it := range batch {
		e, err := envelope.Decode(*it.B)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestFloodingSenderIsNackedNotTheDestination: a sender that fills a busy replica's queue gets
// OVERLOADED for its own envelopes; the replica stays attached and another sender's request
// still goes through.
func TestFloodingSenderIsNackedNotTheDestination(t *testing.T) {
	s := offlineSentinel(t, map[string]string{"FAME_SEND_QUEUE_BYTES": "1048576"})
	replica, flooder, innocent := offlineConn(s, "replica"), offlineConn(s, "flooder"), offlineConn(s, "innocent")
	a, _ := envelope.ParseAddress("math@fame.fabric")
	s.routes.bind(replica, a)

	refusedAt := -1
	for i := 0; i < 100; i++ {
		msg, h := request(t, flooder, "math@fame.fabric", 64000)
		s.dispatch(flooder, msg, h)
		if fr := queuedFrames(t, flooder); len(fr) > 0 {
			refusedAt = i
			nack, _ := fr[0].DecodeFrame()
			da, ok := nack.(*envelope.DeliveryAck)
			if !ok || da.OK || da.Code != envelope.CodeOverloaded || da.RefID != string(h.ID) {
				t.Fatalf("flooder got %s, want an OVERLOADED nack for %s", fr[0].Frame, h.ID)
			}
			break
		}
	}
	if refusedAt < 0 {
		t.Fatal("100 requests of 64 KB into a 1 MiB queue were all accepted")
	}
	if held := replica.q.Bytes(); held > 512<<10 {
		t.Fatalf("one sender holds %d bytes of a 1 MiB queue, more than its half", held)
	}
	if replica.closed() {
		t.Fatal("the destination was disconnected because a sender flooded it")
	}
	msg, h := request(t, innocent, "math@fame.fabric", 64000)
	s.dispatch(innocent, msg, h)
	if fr := queuedFrames(t, innocent); len(fr) != 0 {
		t.Fatalf("innocent sender refused: %s", fr[0].Frame)
	}
	if replica.pendingLen() != refusedAt+1 {
		t.Fatalf("pending %d, want %d: refused requests must not stay tracked", replica.pendingLen(), refusedAt+1)
	}
}

func TestStreamEnded(t *testing.T) {
	env := func(payload string) []byte {
		return []byte(`{"version":"1.0","id":"a","frame":{"type":"Data","payload":` + payload + `}}`)
	}
	for _, c := range []struct {
		msg  []byte
		want bool
	}{
		{env(`{"jsonrpc":"2.0","id":1,"result":null}`), true},
		{env(`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`), true},
		{env(`{"jsonrpc":"2.0","id":1,"result":0}`), false},
		{env(`{"jsonrpc":"2.0","id":1,"result":{"v":null}}`), false},
		{env(`{"jsonrpc":"2.0","id":1}`), false},
		{env(`"ciphertext"`), false},
		{[]byte(`not json`), false},
	} {
		if got := streamEnded(c.msg); got != c.want {
			t.Errorf("streamEnded(%s) = %v, want %v", c.msg, got, c.want)
		}
	}
}

func TestStaleStreamsForgotten(t *testing.T) {
	s := offlineSentinel(t, nil)
	replica := offlineConn(s, "replica")
	_, h := request(t, replica, "x@fame.fabric", 1)
	h.RType = envelope.RTypeStream
	if !replica.trackPending(h) {
		t.Fatal("not tracked")
	}
	replica.forgetStaleStreams(time.Now())
	if replica.pendingLen() != 1 {
		t.Fatal("a fresh stream was forgotten")
	}
	replica.forgetStaleStreams(time.Now().Add(staleStream + time.Minute))
	if replica.pendingLen() != 0 {
		t.Fatal("a stream quiet for longer than staleStream is still tracked")
	}
}

// The drains wait only for requests that can still be answered and read: not for one whose
// caller left, nor for a sealed (channel) stream that has gone quiet; both stay tracked.
func TestAwaitingSkipsDepartedCallersAndQuietOpaqueStreams(t *testing.T) {
	s := offlineSentinel(t, nil)
	replica := offlineConn(s, "replica")
	stayer, leaver := offlineConn(s, "stayer"), offlineConn(s, "leaver")
	track := func(from *conn, stream, sealed bool) {
		t.Helper()
		_, h := request(t, from, "math@fame.fabric", 1)
		if stream {
			h.RType = envelope.RTypeStream
		}
		if sealed {
			h.EncKID = []byte("chan-1")
		}
		if !replica.trackPending(h) {
			t.Fatal("not tracked")
		}
	}
	track(stayer, false, false) // a plain call
	track(stayer, true, false)  // a readable stream
	track(stayer, true, true)   // a sealed stream
	track(leaver, false, false) // a call whose caller is about to leave
	now := time.Now()
	sids := map[string]bool{}
	if n := replica.awaiting(now, s.reachable, sids); n != 4 {
		t.Fatalf("awaiting = %d before anything changed, want 4", n)
	}
	if !sids[stayer.sid] || !sids[leaver.sid] || len(sids) != 2 {
		t.Fatalf("sids = %v, want the stayer's and the leaver's", sids)
	}
	s.routes.detach(leaver)
	if n := replica.awaiting(now, s.reachable, nil); n != 3 {
		t.Fatalf("awaiting = %d after the caller left, want 3", n)
	}
	later := now.Add(quietStream + 100*time.Millisecond)
	if n := replica.awaiting(later, s.reachable, nil); n != 2 {
		t.Fatalf("awaiting = %d once the sealed stream went quiet, want 2 (the readable stream still counts)", n)
	}
	if replica.pendingLen() != 4 {
		t.Fatalf("pending = %d, want all 4 still tracked (a replica's death must still nack them)", replica.pendingLen())
	}
}

// A reply whose caller has left still clears its request from the replica's pending table.
func TestReplyToDepartedCallerIsAnswered(t *testing.T) {
	s := offlineSentinel(t, nil)
	replica, client := offlineConn(s, "replica"), offlineConn(s, "client")
	_, h := request(t, client, "math@fame.fabric", 1)
	if !replica.trackPending(h) {
		t.Fatal("not tracked")
	}
	s.routes.detach(client)
	r, _ := envelope.New(&envelope.Data{Payload: []byte(`{"jsonrpc":"2.0","id":1,"result":3}`)})
	r.SID, r.TraceID, r.To, r.CorrID = replica.sid, envelope.NewID(), string(h.ReplyTo), string(h.CorrID)
	msg, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var rh envelope.Header
	if err := envelope.ParseHeader(msg, &rh); err != nil {
		t.Fatal(err)
	}
	s.route(replica, msg, &rh, rh.To)
	if replica.pendingLen() != 0 {
		t.Fatal("the request stays pending after its reply, because its caller had left")
	}
}

func TestLimitOptions(t *testing.T) {
	get := func(env map[string]string) config.Getenv {
		return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	o, err := LoadOptions("", get(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.SendQueue != 4096 || o.SendQueueBytes != 8<<20 || o.MaxRoutes != 256 || o.MaxCapabilities != 1024 ||
		o.MaxKeys != 64 || o.MaxPending != 65536 || o.MaxConnections != 100000 || o.AttachRate != 1000 ||
		o.AttachBurst != 5000 || o.AttachRateLoopback || o.SlowConsumerTimeout != 10*time.Second || o.AdminToken != "" {
		t.Fatalf("defaults: %+v", o)
	}
	if want := defaultGlobalQueueBytes(); o.GlobalQueueBytes != want {
		t.Fatalf("global queue bytes %d, want %d", o.GlobalQueueBytes, want)
	}
	prev := debug.SetMemoryLimit(4 << 30)
	if got := defaultGlobalQueueBytes(); got != 1<<30 {
		t.Errorf("GOMEMLIMIT 4 GiB: global queue bound %d, want 1 GiB", got)
	}
	debug.SetMemoryLimit(prev)

	o, err = LoadOptions("", get(map[string]string{
		"FAME_SEND_QUEUE_BYTES": "1048576", "FAME_GLOBAL_QUEUE_BYTES": "2097152", "FAME_SLOW_CONSUMER_TIMEOUT_MS": "2500",
		"FAME_MAX_ROUTES": "5", "FAME_MAX_CAPABILITIES": "6", "FAME_MAX_KEYS": "7", "FAME_MAX_PENDING": "8",
		"FAME_MAX_CONNECTIONS": "9", "FAME_ATTACH_RATE": "2.5", "FAME_ATTACH_BURST": "10",
		"FAME_ATTACH_RATE_LOOPBACK": "true", "FAME_ADMIN_TOKEN": "0123456789abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.SendQueueBytes != 1<<20 || o.GlobalQueueBytes != 2<<20 || o.SlowConsumerTimeout != 2500*time.Millisecond ||
		o.MaxRoutes != 5 || o.MaxCapabilities != 6 || o.MaxKeys != 7 || o.MaxPending != 8 || o.MaxConnections != 9 ||
		o.AttachRate != 2.5 || o.AttachBurst != 10 || !o.AttachRateLoopback || o.AdminToken != "0123456789abcdef" {
		t.Fatalf("from env: %+v", o)
	}

	f := &File{}
	yes := true
	f.Node.Limits = LimitsConfig{SendQueueBytes: 3 << 20, MaxRoutes: 11, MaxKeys: 12, AttachRate: 3, AttachRateLoopback: &yes, SlowConsumerTimeoutMs: 700}
	f.Node.Admin.Token = "yaml-admin-token-123"
	o, err = f.Resolve(get(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.SendQueueBytes != 3<<20 || o.MaxRoutes != 11 || o.MaxKeys != 12 || o.AttachRate != 3 || !o.AttachRateLoopback ||
		o.SlowConsumerTimeout != 700*time.Millisecond || o.AdminToken != "yaml-admin-token-123" {
		t.Fatalf("from YAML: %+v", o)
	}

	for _, bad := range []map[string]string{
		{"FAME_MAX_ROUTES": "-1"}, {"FAME_SEND_QUEUE_BYTES": "65536"}, {"FAME_MAX_PENDING": "x"}, {"FAME_ATTACH_RATE": "0"},
		{"FAME_ADMIN_TOKEN": "short"}, {"FAME_ATTACH_RATE_LOOPBACK": "maybe"},
	} {
		if _, err := LoadOptions("", get(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestStoreWithoutNodeIDWarns(t *testing.T) {
	get := func(k string) (string, bool) {
		if k == "FAME_STORAGE_PATH" {
			return t.TempDir() + "/bindings.db", true
		}
		return "", false
	}
	opts, err := LoadOptions("", config.Getenv(get))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	s, err := New(opts, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown(context.Background()) // lets go of the store file
	if !strings.Contains(logs.String(), "restored bindings cannot match") {
		t.Fatalf("no warning about the missing node id:\n%s", logs.String())
	}
	opts.ID = "fixed"
	logs2 := &syncbuf.Buffer{}
	s2, err := New(opts, WithLogger(slog.New(slog.NewTextHandler(logs2, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	if strings.Contains(logs2.String(), "restored bindings cannot match") {
		t.Fatal("warned although the node id is fixed")
	}
}
