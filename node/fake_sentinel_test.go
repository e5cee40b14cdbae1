package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// fakeSentinel speaks just enough of the sentinel side for the SDK tests: attach, bind and
// advertise acks, heartbeat acks, routing of Data and DeliveryAck by exact address, pool and
// physical path, NO_ROUTE nacks, and a record of everything each child sent.
type fakeSentinel struct {
	t    *testing.T
	base string       // http://host of the server
	stop func()       // stops the server
	http *http.Client // what nodes dial with (nil: the default, real sockets)
	id   string

	mu       sync.Mutex
	children map[string]*fakeChild
	exact    map[string]string   // address → child id
	pools    map[string][]string // "participant@*.suffix" → child ids
	got      map[string][]*envelope.Envelope
	attaches map[string]int
	closes   map[string]websocket.StatusCode // close status seen when a child's socket ended

	// Knobs, set before the nodes connect.
	refuse      string                           // non-empty: negative NodeAttachAck with this reason
	noHeartbeat bool                             // never ack heartbeats
	hbPayload   atomic.Pointer[json.RawMessage]  // payload of the heartbeat acks (replica drain status)
	overlay     *fakeSec                         // non-nil: sign, keep keys, answer KeyRequests
	noCredits   atomic.Bool                      // withhold CreditUpdates (a stuck receiver)
	drop        func(*envelope.Envelope) bool    // drop an envelope before routing it
	tamper      func(*envelope.Envelope)         // rewrite an envelope before routing it
	onForward   func(*envelope.Envelope, string) // observe each forward (to child id)
}

type fakeChild struct {
	id   string
	conn *websocket.Conn
	wmu  sync.Mutex
	seq  map[string]int64
	flow string
	recv map[string]int // envelopes received per flow since the last CreditUpdate
	owed []string       // flows whose CreditUpdate was withheld
}

// newFakeSentinel serves on a loopback socket.
func newFakeSentinel(t *testing.T) *fakeSentinel { return startFakeSentinel(t, false) }

// newBubbleSentinel is the same fake over in-memory pipes, for tests run in a
// testing/synctest bubble: a goroutine blocked on a pipe is durably blocked, so
// synctest.Wait can tell "nothing more will happen" and fake time can advance, which a
// loopback socket (blocked in the network poller) does not allow.
func newBubbleSentinel(t *testing.T) *fakeSentinel { return startFakeSentinel(t, true) }

func startFakeSentinel(t *testing.T, inMemory bool) *fakeSentinel {
	f := &fakeSentinel{
		t: t, id: "SENTINEL00000001",
		children: map[string]*fakeChild{}, exact: map[string]string{}, pools: map[string][]string{},
		got: map[string][]*envelope.Envelope{}, attaches: map[string]int{}, closes: map[string]websocket.StatusCode{},
	}
	if inMemory {
		l := newMemListener()
		srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(l)
		}()
		tr := &http.Transport{DialContext: l.dial}
		f.base, f.http = "http://fake-sentinel", &http.Client{Transport: tr}
		f.stop = func() {
			_ = srv.Close()
			<-done
			tr.CloseIdleConnections()
		}
	} else {
		srv := httptest.NewServer(http.HandlerFunc(f.serve))
		f.base, f.stop = srv.URL, srv.Close
	}
	t.Cleanup(f.close)
	return f
}

func (f *fakeSentinel) url() string {
	return "ws" + strings.TrimPrefix(f.base, "http") + "/fame/v1/attach/ws/downstream"
}

func (f *fakeSentinel) close() {
	f.dropAll()
	f.stop()
}

// memListener is a net.Listener whose connections are net.Pipe ends handed over by dial.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial is the client side's DialContext.
func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "fake-sentinel" }

// dropAll closes every child socket abruptly, as a sentinel crash would.
func (f *fakeSentinel) dropAll() {
	f.mu.Lock()
	cs := make([]*fakeChild, 0, len(f.children))
	for _, c := range f.children {
		cs = append(cs, c)
	}
	f.children = map[string]*fakeChild{}
	f.exact = map[string]string{}
	f.pools = map[string][]string{}
	f.mu.Unlock()
	for _, c := range cs {
		c.conn.CloseNow()
	}
}

func (f *fakeSentinel) received(child string) []*envelope.Envelope {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*envelope.Envelope(nil), f.got[child]...)
}

func (f *fakeSentinel) closeStatus(child string) (websocket.StatusCode, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.closes[child]
	return c, ok
}

func (f *fakeSentinel) attachCount(child string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attaches[child]
}

func (f *fakeSentinel) serve(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(1 << 20)
	c := &fakeChild{id: id, conn: conn, seq: map[string]int64{}, flow: envelope.NewID(), recv: map[string]int{}}
	ctx := r.Context()
	defer conn.CloseNow()
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			f.mu.Lock()
			f.closes[id] = websocket.CloseStatus(err)
			if f.children[id] == c {
				delete(f.children, id)
			}
			f.mu.Unlock()
			return
		}
		env, err := envelope.Decode(msg)
		if err != nil {
			f.t.Errorf("fake sentinel: undecodable envelope from %s: %v", id, err)
			return
		}
		f.mu.Lock()
		f.got[id] = append(f.got[id], env)
		f.mu.Unlock()
		f.credit(ctx, c, env)
		f.handle(ctx, c, env)
	}
}

func (f *fakeSentinel) handle(ctx context.Context, c *fakeChild, env *envelope.Envelope) {
	fr, err := env.DecodeFrame()
	if err != nil {
		f.t.Errorf("fake sentinel: bad frame: %v", err)
		return
	}
	path := "/" + f.id + "/" + c.id
	switch v := fr.(type) {
	case *envelope.NodeAttach:
		if f.refuse != "" {
			a := &envelope.NodeAttachAck{Ack: envelope.Ack{OK: false, Reason: f.refuse, RefID: env.ID}}
			f.reply(ctx, c, env, a)
			return
		}
		f.mu.Lock()
		f.children[c.id] = c
		f.attaches[c.id]++
		f.mu.Unlock()
		ack := envelope.NewNodeAttachAck(env.ID, f.id, path, "/"+f.id, "EPOCH00000000001")
		if f.overlay != nil {
			if _, err := f.overlay.keys.AddRaw(v.Keys, path); err != nil {
				f.t.Errorf("fake sentinel: child keys: %v", err)
			}
			ack.Keys = f.overlay.jwks
			if len(v.Stickiness) > 0 {
				ack.Stickiness = json.RawMessage(`{"mode":"aft","enabled":true,"ttlSec":7200,"version":1}`)
			}
		}
		f.reply(ctx, c, env, ack)
	case *envelope.AddressBind:
		f.mu.Lock()
		if a, err := envelope.ParseAddress(v.Address); err == nil && a.IsWildcard() {
			f.pools[v.Address] = append(f.pools[v.Address], c.id)
		} else {
			f.exact[v.Address] = c.id
		}
		f.mu.Unlock()
		f.reply(ctx, c, env, &envelope.AddressBindAck{Ack: envelope.Ack{OK: true, RefID: env.ID}, Address: v.Address})
	case *envelope.CapabilityAdvertise:
		f.reply(ctx, c, env, &envelope.CapabilityAdvertiseAck{Ack: envelope.Ack{OK: true, RefID: env.ID}, Capabilities: v.Capabilities, Address: v.Address})
	case *envelope.NodeHeartbeat:
		if !f.noHeartbeat {
			ack := &envelope.NodeHeartbeatAck{Ack: envelope.Ack{OK: true, RefID: env.ID}, RoutingEpoch: "EPOCH00000000001"}
			if p := f.hbPayload.Load(); p != nil {
				ack.Payload = *p
			}
			f.reply(ctx, c, env, ack)
		}
	case *envelope.CreditUpdate:
	case *envelope.KeyRequest:
		if f.overlay == nil || (f.overlay.answer != nil && !f.overlay.answer(c.id)) {
			return
		}
		owner, keys, err := f.overlay.keys.KeyAnnounceKeys(v.Kid)
		if err != nil {
			return
		}
		f.reply(ctx, c, env, &envelope.KeyAnnounce{PhysicalPath: owner, Keys: keys, Created: envelope.Now()})
	case *envelope.Data, *envelope.DeliveryAck, *envelope.SecureOpen, *envelope.SecureAccept, *envelope.SecureClose:
		if f.drop != nil && f.drop(env) {
			return
		}
		if f.tamper != nil {
			f.tamper(env)
		}
		target := f.route(env.To)
		if target == nil {
			if _, ok := v.(*envelope.Data); ok && env.ReplyTo != "" && env.CorrID != "" {
				nack := &envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: "NO_ROUTE", Reason: "Unroutable to " + env.To, RefID: env.ID}}
				out, _ := envelope.New(nack)
				out.SID, out.TraceID, out.To, out.CorrID, out.FlowID = envelope.SecureDigest("/"+f.id), env.TraceID, env.ReplyTo, env.CorrID, c.flow
				if back := f.route(env.ReplyTo); back != nil {
					f.write(ctx, back, out, envelope.FlowReset)
				}
			}
			return
		}
		if f.onForward != nil {
			f.onForward(env, target.id)
		}
		f.write(ctx, target, env, -1)
	}
}

// route resolves to by exact bind, pool, then physical path /<sentinel>/<child>.
func (f *fakeSentinel) route(to string) *fakeChild {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.exact[to]; ok {
		return f.children[id]
	}
	a, err := envelope.ParseAddress(to)
	if err != nil {
		return nil
	}
	if a.Host != "" {
		for pat, ids := range f.pools {
			pa, _ := envelope.ParseAddress(pat)
			if pa.Participant == a.Participant && envelope.MatchPool(pa.Host, a.Host) && len(ids) > 0 {
				return f.children[ids[0]]
			}
		}
	}
	if segs := strings.Split(strings.TrimPrefix(a.Path, "/"), "/"); len(segs) == 2 && segs[0] == f.id {
		return f.children[segs[1]]
	}
	return nil
}

// reply sends a sentinel-originated ack for req on c's own flow.
func (f *fakeSentinel) reply(ctx context.Context, c *fakeChild, req *envelope.Envelope, fr envelope.Frame) {
	out, err := envelope.New(fr)
	if err != nil {
		f.t.Errorf("fake sentinel: %v", err)
		return
	}
	out.SID, out.TraceID, out.CorrID, out.FlowID = envelope.SecureDigest("/"+f.id), req.TraceID, req.CorrID, c.flow
	f.sign(out)
	f.write(ctx, c, out, -1)
}

// write re-stamps seqId/flowFlags per flow for this hop (flags >= 0 forces the flags) and sends.
func (f *fakeSentinel) write(ctx context.Context, c *fakeChild, env *envelope.Envelope, flags envelope.FlowFlags) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	cp := *env
	last, seen := c.seq[cp.FlowID]
	if !seen {
		cp.SeqID, cp.FlowFlags = 0, envelope.FlowSyn
		c.seq[cp.FlowID] = 0
	} else {
		cp.SeqID, cp.FlowFlags = last+1, 0
		c.seq[cp.FlowID] = last + 1
	}
	if flags >= 0 {
		cp.FlowFlags = flags
	}
	b, err := cp.Marshal()
	if err != nil {
		f.t.Errorf("fake sentinel: marshal: %v", err)
		return
	}
	_ = c.conn.Write(ctx, websocket.MessageBinary, b)
}

// credit is the receiver side of flow control, as a sentinel must do it: a CreditUpdate of
// 32 after every 24 envelopes of a flow (withheld while noCredits is set).
func (f *fakeSentinel) credit(ctx context.Context, c *fakeChild, env *envelope.Envelope) {
	if env.FrameType() == envelope.TypeCreditUpdate || env.FlowID == "" {
		return
	}
	c.recv[env.FlowID]++
	if c.recv[env.FlowID] < 24 {
		return
	}
	c.recv[env.FlowID] = 0
	if f.noCredits.Load() {
		f.mu.Lock()
		c.owed = append(c.owed, env.FlowID)
		f.mu.Unlock()
		return
	}
	f.sendCredit(ctx, c, env.FlowID)
}

func (f *fakeSentinel) sendCredit(ctx context.Context, c *fakeChild, flow string) {
	cu, _ := envelope.New(&envelope.CreditUpdate{FlowID: flow, Credits: 32})
	cu.FlowID, cu.SeqID, cu.FlowFlags = flow, 0, envelope.FlowAck
	b, _ := cu.Marshal()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.Write(ctx, websocket.MessageBinary, b)
}

// grantOwed sends a child every CreditUpdate withheld so far, plus one per flow it used.
func (f *fakeSentinel) grantOwed(child string) {
	f.mu.Lock()
	c := f.children[child]
	var owed []string
	if c != nil {
		owed, c.owed = c.owed, nil
	}
	f.mu.Unlock()
	for _, flow := range owed {
		f.sendCredit(context.Background(), c, flow)
	}
}

func (f *fakeSentinel) childIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.children {
		ids = append(ids, id)
	}
	return ids
}

// fakeSec is the fake sentinel's overlay profile: its own signing key, the children's keys
// (from NodeAttach) and, optionally, a filter on whose KeyRequests it answers.
type fakeSec struct {
	signer *security.Signer
	keys   *security.KeyStore
	jwks   []json.RawMessage
	answer func(child string) bool
}

func newFakeSec(t *testing.T) *fakeSec {
	priv, err := security.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSec{signer: &security.Signer{Key: priv, Kid: envelope.NewID()}, keys: security.NewKeyStore(security.KeyStoreOptions{})}
	j, _ := json.Marshal(security.SigningJWK(priv.Public().(ed25519.PublicKey), fs.signer.Kid))
	fs.jwks = []json.RawMessage{j}
	if err := fs.keys.Add(security.SigningJWK(priv.Public().(ed25519.PublicKey), fs.signer.Kid), "/SENTINEL00000001"); err != nil {
		t.Fatal(err)
	}
	return fs
}

func (f *fakeSentinel) sign(env *envelope.Envelope) {
	if f.overlay == nil {
		return
	}
	if err := f.overlay.signer.Sign(env); err != nil {
		f.t.Errorf("fake sentinel: sign: %v", err)
	}
}

// sendTo delivers a sentinel-originated frame to a child (e.g. SecureClose).
func (f *fakeSentinel) sendTo(child, to string, fr envelope.Frame) {
	f.mu.Lock()
	c := f.children[child]
	f.mu.Unlock()
	if c == nil {
		f.t.Errorf("fake sentinel: no child %s", child)
		return
	}
	out, _ := envelope.New(fr)
	out.SID, out.TraceID, out.To, out.FlowID = envelope.SecureDigest("/"+f.id), envelope.NewID(), to, c.flow
	f.sign(out)
	f.write(context.Background(), c, out, -1)
}
