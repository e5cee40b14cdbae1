package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

// rawPeer is a hostile or hand-driven node: a bare WebSocket that speaks envelopes by hand,
// never the SDK, so attack tests exercise exactly the bytes an attacker could send.
type rawPeer struct {
	t    *testing.T
	ws   *websocket.Conn
	in   chan rawRead
	id   string
	path string
	flow string
	seq  int64
}

type rawRead struct {
	b   []byte
	err error
}

// dialRaw opens a downstream attach socket for system id id. header may carry an
// Authorization bearer; nil for open admission.
func dialRaw(t *testing.T, f *fabric, id string, header http.Header) *rawPeer {
	t.Helper()
	p, err := tryDialRaw(f, id, header)
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	p.t = t
	t.Cleanup(func() { _ = p.ws.CloseNow() })
	return p
}

func tryDialRaw(f *fabric, id string, header http.Header) (*rawPeer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, f.url()+"/"+id, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	p := &rawPeer{ws: ws, id: id, flow: envelope.NewID(), in: make(chan rawRead, 1024)}
	go func() {
		for {
			// coder/websocket closes a connection whose Read context expires, so timeouts are
			// applied on the channel instead.
			_, b, err := ws.Read(context.Background())
			p.in <- rawRead{b, err}
			if err != nil {
				return
			}
		}
	}()
	return p, nil
}

func (p *rawPeer) sendRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.ws.Write(ctx, websocket.MessageBinary, b)
}

// send stamps flow, sequence and sid the way a well-behaved node would, then writes e.
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
		p.t.Fatalf("%s: send: %v", p.id, err)
	}
}

func (p *rawPeer) sendFrame(fr envelope.Frame, mod func(*envelope.Envelope)) *envelope.Envelope {
	p.t.Helper()
	e, err := envelope.New(fr)
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

var errRawTimeout = errors.New("raw peer: read timeout")

func (p *rawPeer) read(d time.Duration) (*envelope.Envelope, error) {
	select {
	case r := <-p.in:
		if r.err != nil {
			p.in <- r // keep reporting the terminal error
			return nil, r.err
		}
		return envelope.Decode(r.b)
	case <-time.After(d):
		return nil, errRawTimeout
	}
}

// recv returns the next envelope that is not a CreditUpdate or heartbeat ack.
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

// attachAck sends NodeAttach (mod may alter it) and returns the decoded ack, ok or not.
func (p *rawPeer) attachAck(mod func(*envelope.NodeAttach), logicals ...string) *envelope.NodeAttachAck {
	p.t.Helper()
	na := &envelope.NodeAttach{OriginType: "downstream", SystemID: p.id, InstanceID: envelope.NewID(), AcceptedLogicals: logicals}
	if mod != nil {
		mod(na)
	}
	p.sendFrame(na, nil)
	e := p.recv()
	fr, err := e.DecodeFrame()
	if err != nil {
		p.t.Fatal(err)
	}
	ack, ok := fr.(*envelope.NodeAttachAck)
	if !ok {
		p.t.Fatalf("%s: attach: got %s", p.id, e.Frame)
	}
	if ack.OK {
		p.path = ack.AssignedPath
	}
	return ack
}

// attach performs the handshake and fails the test unless it is accepted.
func (p *rawPeer) attach(logicals ...string) *envelope.NodeAttachAck {
	p.t.Helper()
	ack := p.attachAck(nil, logicals...)
	if !ack.OK {
		p.t.Fatalf("%s: attach refused: %+v", p.id, ack)
	}
	return ack
}

func (p *rawPeer) bind(addr string) *envelope.AddressBindAck {
	p.t.Helper()
	p.sendFrame(&envelope.AddressBind{Address: addr, PhysicalPath: p.path}, func(e *envelope.Envelope) {
		e.ReplyTo, e.RType = "__sys__@"+p.path, envelope.RTypeAck
	})
	e := p.recv()
	fr, _ := e.DecodeFrame()
	ack, ok := fr.(*envelope.AddressBindAck)
	if !ok {
		p.t.Fatalf("%s: bind: got %s", p.id, e.Frame)
	}
	return ack
}

// call sends a JSON-RPC-shaped Data request to addr and returns the envelope sent.
func (p *rawPeer) call(to string, payload string) *envelope.Envelope {
	p.t.Helper()
	return p.sendFrame(&envelope.Data{Payload: json.RawMessage(payload)}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo, e.RType = to, "__rpc__x@"+p.path, envelope.RTypeReply
	})
}

// expectClosed waits for the socket to close with code and a reason containing reasonPart.
func (p *rawPeer) expectClosed(code websocket.StatusCode, reasonPart string) {
	p.t.Helper()
	for {
		_, err := p.read(5 * time.Second)
		if err == nil {
			continue
		}
		if errors.Is(err, errRawTimeout) {
			p.t.Fatalf("%s: still open, want close %v", p.id, code)
		}
		if got := websocket.CloseStatus(err); got != code {
			p.t.Fatalf("%s: want close %v, got %v (%v)", p.id, code, got, err)
		}
		var ce websocket.CloseError
		if reasonPart != "" && (!errors.As(err, &ce) || !strings.Contains(ce.Reason, reasonPart)) {
			p.t.Fatalf("%s: close reason %q does not mention %q", p.id, ce.Reason, reasonPart)
		}
		return
	}
}

// metric reads one sample from the fabric's /metrics: name with the given labels
// (e.g. `reason="bind_conflict"`), 0 when absent.
func (f *fabric) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.addr+"/metrics", nil)
	if tok := f.env["FAME_ADMIN_TOKEN"]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbl string
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				continue
			}
			lbl, rest = rest[1:end], rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // a longer metric name with the same prefix
		}
		match := true
		for _, want := range labels {
			if !strings.Contains(","+lbl+",", ","+want+",") {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		return v
	}
	return 0
}

func (p *rawPeer) String() string { return fmt.Sprintf("raw(%s@%s)", p.id, p.path) }
