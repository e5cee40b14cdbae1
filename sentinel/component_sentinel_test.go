package sentinel

import (
	"encoding/json"
	"testing"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
)

// The Sentinel's own routing decisions (resolve) and its handling of a closed connection
// (connClosed), with fake peers in its route table: New builds every component, nothing is
// served and no socket is opened.

func fakeWiredSentinel(t *testing.T, env map[string]string) *Sentinel {
	t.Helper()
	opts, err := LoadOptions("", config.Getenv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	opts.IdleTimeout = 0 // the fakes never send anything
	s, err := New(opts, WithLogger(discardLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.sticky.close() })
	return s
}

func TestResolve(t *testing.T) {
	s := fakeWiredSentinel(t, nil)
	client, exact, r1, r2 := newFakePeer(s.path, "client"), newFakePeer(s.path, "exact"), newFakePeer(s.path, "r1"), newFakePeer(s.path, "r2")
	for _, p := range []*fakePeer{client, exact, r1, r2} {
		s.routes.attach(p)
	}
	s.routes.bind(exact, mustAddr(t, "echo@fame.fabric"))
	s.routes.bind(r1, mustAddr(t, "math@*.fame.fabric"))
	s.routes.bind(r2, mustAddr(t, "math@*.fame.fabric"))
	cases := []struct {
		to     string
		want   []string // any of these
		reason resolveReason
	}{
		{"echo@fame.fabric", []string{"exact"}, reasonNone},
		{"math@fame.fabric", []string{"r1", "r2"}, reasonNone},
		{"math@r7.fame.fabric", []string{"r1", "r2"}, reasonNone},
		{"__rpc__x@" + client.path, []string{"client"}, reasonNone},
		{"__sys__@" + r2.path + "/deeper", []string{"r2"}, reasonNone},
		{"__sys__@" + s.path, nil, reasonLocal},
		{"nobody@fame.fabric", nil, reasonNone},
		{"no-at-sign", nil, reasonNone},
		{"x@", nil, reasonNone},
		{"x@/" + s.id + "/gone", nil, reasonNone},
	}
	for _, tc := range cases {
		h := &envelope.Header{ID: []byte(envelope.NewID()), SID: []byte(client.sid), FrameType: []byte(envelope.TypeData)}
		got, reason := s.resolve(client, h, []byte(tc.to))
		id := ""
		if got != nil {
			id = got.ident().systemID
		}
		ok := len(tc.want) == 0 && got == nil
		for _, w := range tc.want {
			ok = ok || id == w
		}
		if !ok || reason != tc.reason {
			t.Errorf("resolve(%s) = %q %v, want one of %v, %v", tc.to, id, reason, tc.want, tc.reason)
		}
	}
}

// TestConnClosedNacksInflight: when a replica's connection closes, every request still open on
// it is answered at once to its sender (DeliveryAck, or SecureAccept for a SecureOpen, with
// ROUTE_CONNECTOR_CLOSED and flow RESET), and the replica leaves its pool.
func TestConnClosedNacksInflight(t *testing.T) {
	s := fakeWiredSentinel(t, nil)
	client := newFakePeer(s.path, "client")
	s.routes.attach(client)
	rep := newConn(s, nil, "test", "rep", "downstream")
	rep.systemID, rep.path = "rep", s.path+"/rep"
	rep.sid = envelope.SecureDigest(rep.path)
	s.routes.attach(rep)
	s.routes.bind(rep, mustAddr(t, "math@*.fame.fabric"))

	type req struct {
		frame envelope.Frame
		id    string
	}
	reqs := []*req{
		{frame: &envelope.Data{Payload: json.RawMessage(`{}`)}},
		{frame: &envelope.SecureOpen{CID: "chan-1"}},
	}
	for _, r := range reqs {
		_, h := envelopeFrom(t, client, nil, r.frame, func(e *envelope.Envelope) {
			e.To, e.ReplyTo, e.RType, e.CorrID = "math@fame.fabric", "__rpc__x@"+client.path, envelope.RTypeReply, "corr-"+e.ID
		})
		r.id = string(h.ID)
		if !rep.trackPending(h) {
			t.Fatal("trackPending refused")
		}
	}
	s.connClosed(rep, "test: replica gone")

	if _, m := s.routes.lookupPool([]byte("math"), []byte("fame.fabric")); len(m) != 0 {
		t.Errorf("the closed replica is still in its pool: %v", ids(m))
	}
	client.mu.Lock()
	sent, flags := client.sent, client.flags
	client.mu.Unlock()
	if len(sent) != len(reqs) {
		t.Fatalf("client got %d nacks, want %d", len(sent), len(reqs))
	}
	acked := map[string]bool{}
	for i, e := range sent {
		if flags[i] != envelope.FlowReset {
			t.Errorf("nack %d sent with flags %v, want RESET", i, flags[i])
		}
		f, err := e.DecodeFrame()
		if err != nil {
			t.Fatal(err)
		}
		var ack envelope.Ack
		switch f := f.(type) {
		case *envelope.DeliveryAck:
			ack = f.Ack
		case *envelope.SecureAccept:
			ack = f.Ack
			if f.CID != "chan-1" {
				t.Errorf("SecureAccept nack for cid %q, want chan-1", f.CID)
			}
		default:
			t.Fatalf("client got %s", e.FrameType())
		}
		if ack.OK || ack.Code != envelope.CodeRouteConnectorClosed || e.CorrID != "corr-"+ack.RefID {
			t.Errorf("nack %+v corr %s", ack, e.CorrID)
		}
		acked[ack.RefID] = true
	}
	for _, r := range reqs {
		if !acked[r.id] {
			t.Errorf("request %s (%s) not nacked", r.id, r.frame.FrameType())
		}
	}
	if rep.pendingLen() != 0 {
		t.Errorf("%d requests still tracked on the closed replica", rep.pendingLen())
	}
}

// TestConnClosedOnlyHolderPurges: the bindings of a replica are purged by system id, so only
// the connection holding the id may purge them. A connection whose attach was refused (a
// claim of a live replica's id) and one already replaced by a newer attach of the id close
// without touching the live holder's sessions; the holder's own close purges them.
func TestConnClosedOnlyHolderPurges(t *testing.T) {
	s := fakeWiredSentinel(t, nil)
	mk := func(id string) *conn {
		c := newConn(s, nil, "test", id, "downstream")
		c.systemID, c.path = id, s.path+"/"+id
		c.sid = envelope.SecureDigest(c.path)
		return c
	}
	holder := mk("rep")
	s.routes.attach(holder)
	sid := envelope.SecureDigest("/client-path")
	s.sticky.table.Bind(sid, "rep", 0)
	bound := func() bool { _, ok := s.sticky.table.Lookup(sid); return ok }

	refused := mk("rep") // its attach was refused: it never entered the route table
	s.connClosed(refused, "test: attach refused")
	if !bound() {
		t.Fatal("a refused attach's close purged the live holder's session")
	}

	fresh := mk("rep")
	if old := s.routes.attach(fresh); old != peer(holder) {
		t.Fatalf("attach replaced %v, want the holder", old)
	}
	s.connClosed(holder, "test: replaced") // the replaced connection's close arrives late
	if !bound() {
		t.Fatal("a replaced connection's late close purged the new holder's session")
	}

	s.connClosed(fresh, "test: replica gone")
	if bound() {
		t.Fatal("the holder's close left its session bound")
	}
}
