package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/internal/syncbuf"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/wsengine"
)

type testSentinel struct {
	*Sentinel
	url  string
	logs *syncbuf.Buffer
	stop func()
}

// startSentinel starts a sentinel configured by env (with extra options after its logger) on
// a loopback port; the test's cleanup stops it.
func startSentinel(t *testing.T, env map[string]string, extra ...Option) *testSentinel {
	t.Helper()
	get := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	opts, err := LoadOptions("", config.Getenv(get))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(opts, append([]Option{WithLogger(log)}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, l); close(done) }()
	ts := &testSentinel{Sentinel: s, url: "ws://" + l.Addr().String(), logs: logs}
	ts.stop = func() { cancel(); <-done }
	t.Cleanup(ts.stop)
	return ts
}

// rawPeer is a bare WebSocket peer that speaks envelopes by hand.
type rawPeer struct {
	t    *testing.T
	ws   *websocket.Conn
	in   chan readResult
	id   string
	path string
	flow string
	seq  int64
}

func dialRaw(t *testing.T, ts *testSentinel, id string) *rawPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ts.url+"/fame/v1/attach/ws/downstream/"+id, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	p := &rawPeer{t: t, ws: ws, id: id, flow: envelope.NewID()}
	p.startReader()
	t.Cleanup(func() { _ = ws.CloseNow() })
	return p
}

type readResult struct {
	b   []byte
	err error
}

// startReader reads in the background: coder/websocket closes a connection whose Read
// context expires, so timeouts are applied on the channel instead.
func (p *rawPeer) startReader() {
	p.in = make(chan readResult, 1024)
	go func() {
		for {
			_, b, err := p.ws.Read(context.Background())
			p.in <- readResult{b, err}
			if err != nil {
				return
			}
		}
	}()
}

func (p *rawPeer) sendRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.ws.Write(ctx, websocket.MessageBinary, b)
}

func (p *rawPeer) send(e *envelope.Envelope) {
	p.t.Helper()
	if e.FlowID == "" {
		e.FlowID = p.flow
	}
	e.SeqID = p.seq
	p.seq++
	if p.path != "" && e.SID == "" {
		e.SID = envelope.SecureDigest(p.path)
	}
	b, err := e.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.sendRaw(b); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *rawPeer) sendFrame(f envelope.Frame, mod func(*envelope.Envelope)) *envelope.Envelope {
	p.t.Helper()
	e, err := envelope.New(f)
	if err != nil {
		p.t.Fatal(err)
	}
	e.TraceID, e.CorrID = envelope.NewID(), envelope.NewID()
	if mod != nil {
		mod(e)
	}
	p.send(e)
	return e
}

// recv reads the next envelope that is not a CreditUpdate or heartbeat ack.
func (p *rawPeer) recv() *envelope.Envelope {
	p.t.Helper()
	for {
		e, err := p.read(5 * time.Second)
		if err != nil {
			p.t.Fatalf("%s: recv: %v", p.id, err)
		}
		switch e.FrameType() {
		case envelope.TypeCreditUpdate, envelope.TypeNodeHeartbeatAck:
			continue
		}
		return e
	}
}

var errReadTimeout = errors.New("read timeout")

func (p *rawPeer) read(d time.Duration) (*envelope.Envelope, error) {
	select {
	case r := <-p.in:
		if r.err != nil {
			p.in <- r // keep reporting the terminal error
			return nil, r.err
		}
		return envelope.Decode(r.b)
	case <-time.After(d):
		return nil, errReadTimeout
	}
}

// attach performs the handshake and returns the ack.
func (p *rawPeer) attach(logicals ...string) *envelope.NodeAttachAck {
	p.t.Helper()
	p.sendFrame(&envelope.NodeAttach{OriginType: "downstream", SystemID: p.id, InstanceID: envelope.NewID(), AcceptedLogicals: logicals}, nil)
	e := p.recv()
	f, err := e.DecodeFrame()
	if err != nil {
		p.t.Fatal(err)
	}
	ack, ok := f.(*envelope.NodeAttachAck)
	if !ok || !ack.OK {
		p.t.Fatalf("attach: got %s", e.Frame)
	}
	p.path = ack.AssignedPath
	return ack
}

func (p *rawPeer) bind(addr string) *envelope.AddressBindAck {
	p.t.Helper()
	p.sendFrame(&envelope.AddressBind{Address: addr, PhysicalPath: p.path}, func(e *envelope.Envelope) {
		e.ReplyTo, e.RType = "__sys__@"+p.path, envelope.RTypeAck
	})
	e := p.recv()
	f, _ := e.DecodeFrame()
	ack, ok := f.(*envelope.AddressBindAck)
	if !ok {
		p.t.Fatalf("bind: got %s", e.Frame)
	}
	return ack
}

// call sends a Data request to addr and returns the envelope id.
func (p *rawPeer) call(to string, payload string) *envelope.Envelope {
	p.t.Helper()
	return p.sendFrame(&envelope.Data{Payload: json.RawMessage(payload)}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo, e.RType = to, "__rpc__x@"+p.path, envelope.RTypeReply
	})
}

func (p *rawPeer) expectClosed(t *testing.T, code websocket.StatusCode, reasonPart string) {
	t.Helper()
	for {
		_, err := p.read(5 * time.Second)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			t.Fatalf("want close %v, got %v (%v)", code, got, err)
		}
		var ce websocket.CloseError
		if reasonPart != "" && (!asCloseError(err, &ce) || !strings.Contains(ce.Reason, reasonPart)) {
			t.Fatalf("close reason %q does not mention %q", ce.Reason, reasonPart)
		}
		return
	}
}

// drainQueue makes c's queue drain as its writer goroutines would, without a socket: the
// writers run the real loop (wsengine.Queue.Run) and release what they take.
func drainQueue(c *conn) {
	c.q.SetWriter(func() {
		go c.q.Run(c.done, func([]wsengine.Item[*conn]) bool { return true })
	})
}
