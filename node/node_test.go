package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

func testConfig(f *fakeSentinel, logicals ...string) Config {
	return Config{
		URL:               f.url(),
		HTTPClient:        f.http,
		RequestedLogicals: logicals,
		AttachTimeout:     2 * time.Second,
		CallTimeout:       5 * time.Second,
		ReconnectMin:      20 * time.Millisecond,
		ReconnectMax:      100 * time.Millisecond,
	}
}

func connect(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

type xy struct{ X, Y int }

// testOps mirror the math example: add, multiply, fib_stream, whoami, plus failure cases.
func testOps(name string, executions *atomic.Int64) Ops {
	return Ops{
		"add": Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			if executions != nil {
				executions.Add(1)
			}
			var a xy
			if err := json.Unmarshal(p, &a); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidParams, err)
			}
			return a.X + a.Y, nil
		}),
		"multiply": Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			var a xy
			if err := json.Unmarshal(p, &a); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidParams, err)
			}
			return a.X * a.Y, nil
		}),
		"fib_stream": Streaming(func(ctx context.Context, p json.RawMessage, emit func(any) error) error {
			var a struct{ N int }
			if err := json.Unmarshal(p, &a); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidParams, err)
			}
			x, y := 0, 1
			for i := 0; i < a.N; i++ {
				if err := emit(x); err != nil {
					return err
				}
				x, y = y, x+y
			}
			return nil
		}),
		"count": Streaming(func(ctx context.Context, p json.RawMessage, emit func(any) error) error {
			var a struct{ N int }
			if err := json.Unmarshal(p, &a); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidParams, err)
			}
			for i := range a.N {
				if err := emit(i); err != nil {
					return err
				}
			}
			return nil
		}),
		"whoami": Unary(func(ctx context.Context, p json.RawMessage) (any, error) { return name, nil }),
		"boom":   Unary(func(ctx context.Context, p json.RawMessage) (any, error) { return nil, errors.New("kaput") }),
		"panic":  Unary(func(ctx context.Context, p json.RawMessage) (any, error) { panic("oops") }),
		"block": Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}),
	}
}

func agentAndClient(t *testing.T, f *fakeSentinel, mod func(*Config)) (*Node, *Node) {
	t.Helper()
	acfg := testConfig(f, "fame.fabric")
	ccfg := testConfig(f)
	if mod != nil {
		mod(&acfg)
		mod(&ccfg)
	}
	agent := connect(t, acfg)
	if err := agent.Serve(context.Background(), "math@fame.fabric", testOps("agent-1", nil)); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	return agent, connect(t, ccfg)
}

func TestAttachHandshake(t *testing.T) {
	f := newFakeSentinel(t)
	n := connect(t, testConfig(f))
	wantPath := "/" + f.id + "/" + n.SystemID()
	if got := n.AssignedPath(); got != wantPath {
		t.Fatalf("AssignedPath = %q, want %q", got, wantPath)
	}
	got := f.received(n.SystemID())
	if len(got) == 0 {
		t.Fatal("sentinel received nothing")
	}
	a := got[0]
	fr, err := a.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	na, ok := fr.(*envelope.NodeAttach)
	if !ok {
		t.Fatalf("first frame is %T, want NodeAttach", fr)
	}
	if a.SID != "" || a.SeqID != 0 || a.FlowFlags != envelope.FlowSyn || a.FlowID == "" || a.CorrID == "" {
		t.Errorf("NodeAttach envelope header wrong: sid=%q seq=%d flags=%d flow=%q corr=%q", a.SID, a.SeqID, a.FlowFlags, a.FlowID, a.CorrID)
	}
	if na.SystemID != n.SystemID() || na.OriginType != "downstream" || len(na.AcceptedLogicals) != 1 || na.AcceptedLogicals[0] != "*" || na.InstanceID == "" {
		t.Errorf("NodeAttach frame wrong: %+v", na)
	}
}

func TestAttachRefused(t *testing.T) {
	f := newFakeSentinel(t)
	f.refuse = "not welcome"
	_, err := Connect(context.Background(), testConfig(f))
	if !errors.Is(err, ErrAttachRefused) {
		t.Fatalf("err = %v, want ErrAttachRefused", err)
	}
	var ae *AttachError
	if !errors.As(err, &ae) || ae.Reason != "not welcome" {
		t.Fatalf("err = %#v, want AttachError with the sentinel's reason", err)
	}
}

func TestAttachNoSentinel(t *testing.T) {
	f := newFakeSentinel(t)
	url := f.url()
	f.close()
	cfg := testConfig(f)
	cfg.URL = url
	if _, err := Connect(context.Background(), cfg); err == nil {
		t.Fatal("Connect to a closed server succeeded")
	}
}

func TestServeBindsAndAdvertises(t *testing.T) {
	tests := []struct {
		name, logical, wantBind, wantAdvertise string
	}{
		{"exact", "fame.fabric", "math@fame.fabric", "math@fame.fabric"},
		{"pool replica", "*.fame.fabric", "math@*.fame.fabric", "math@%s.fame.fabric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSentinel(t)
			n := connect(t, testConfig(f, tt.logical))
			if err := n.Serve(context.Background(), "math@fame.fabric", testOps("a", nil)); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			wantAdv := tt.wantAdvertise
			if bytes.Contains([]byte(wantAdv), []byte("%s")) {
				wantAdv = fmt.Sprintf(wantAdv, n.SystemID())
			}
			sys := "__sys__@" + n.AssignedPath()
			var bind *envelope.AddressBind
			var adv *envelope.CapabilityAdvertise
			for _, e := range f.received(n.SystemID()) {
				fr, _ := e.DecodeFrame()
				switch v := fr.(type) {
				case *envelope.AddressBind:
					bind = v
				case *envelope.CapabilityAdvertise:
					adv = v
				default:
					continue
				}
				if e.RType != envelope.RTypeAck || e.ReplyTo != sys || e.CorrID == "" || e.SID != envelope.SecureDigest(n.AssignedPath()) {
					t.Errorf("%s envelope header wrong: rtype=%d replyTo=%q corr=%q sid=%q", e.FrameType(), e.RType, e.ReplyTo, e.CorrID, e.SID)
				}
			}
			if bind == nil || bind.Address != tt.wantBind || bind.PhysicalPath != n.AssignedPath() {
				t.Errorf("AddressBind = %+v, want address %q", bind, tt.wantBind)
			}
			if adv == nil || adv.Address != wantAdv || len(adv.Capabilities) != 1 || adv.Capabilities[0] != CapabilityAgent {
				t.Errorf("CapabilityAdvertise = %+v, want address %q", adv, wantAdv)
			}
		})
	}
}

func TestCallAndStream(t *testing.T) {
	f := newFakeSentinel(t)
	_, client := agentAndClient(t, f, nil)
	ctx := context.Background()
	calls := []struct {
		method string
		params any
		want   int
	}{
		{"add", map[string]int{"x": 3, "y": 4}, 7},
		{"multiply", map[string]int{"x": 6, "y": 7}, 42},
		{"add", json.RawMessage(`{"args":[],"kwargs":{"x":1,"y":2}}`), 3},
		{"add", json.RawMessage(`{"args":[{"x":5,"y":5}]}`), 10},
	}
	for _, c := range calls {
		var got int
		if err := client.Call(ctx, "math@fame.fabric", c.method, c.params, &got); err != nil {
			t.Fatalf("%s(%v): %v", c.method, c.params, err)
		}
		if got != c.want {
			t.Errorf("%s(%v) = %d, want %d", c.method, c.params, got, c.want)
		}
	}
	var name string
	if err := client.Call(ctx, "math@fame.fabric", "whoami", json.RawMessage(`{"args":[]}`), &name); err != nil || name != "agent-1" {
		t.Errorf("whoami = %q, %v", name, err)
	}

	st, err := client.Stream(ctx, "math@fame.fabric", "fib_stream", map[string]int{"n": 10})
	if err != nil {
		t.Fatal(err)
	}
	var items []int
	for {
		raw, err := st.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		var v int
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		items = append(items, v)
	}
	if fmt.Sprint(items) != "[0 1 1 2 3 5 8 13 21 34]" {
		t.Errorf("fib_stream(10) = %v", items)
	}
	// A plain call of a streaming op gets the items as one array.
	var all []int
	if err := client.Call(ctx, "math@fame.fabric", "fib_stream", map[string]int{"n": 5}, &all); err != nil || fmt.Sprint(all) != "[0 1 1 2 3]" {
		t.Errorf("fib_stream as a call = %v, %v", all, err)
	}
}

func TestRemoteErrors(t *testing.T) {
	f := newFakeSentinel(t)
	_, client := agentAndClient(t, f, nil)
	tests := []struct {
		method   string
		params   any
		wantCode int
	}{
		{"nope", nil, CodeMethodNotFound},
		{"boom", nil, CodeInternalError},
		{"panic", nil, CodeInternalError},
		{"add", json.RawMessage(`{"x":"three"}`), CodeInvalidParams},
		{"add", json.RawMessage(`"not an object"`), CodeInvalidParams},
	}
	for _, tt := range tests {
		err := client.Call(context.Background(), "math@fame.fabric", tt.method, tt.params, nil)
		var re *RemoteError
		if !errors.As(err, &re) || re.Code != tt.wantCode {
			t.Errorf("%s: err = %v, want RemoteError code %d", tt.method, err, tt.wantCode)
		}
	}
}

func TestNoRoute(t *testing.T) {
	f := newFakeSentinel(t)
	client := connect(t, testConfig(f))
	err := client.Call(context.Background(), "nobody@fame.fabric", "add", nil, nil)
	if !errors.Is(err, ErrNoRoute) || !errors.Is(err, ErrNack) {
		t.Fatalf("err = %v, want ErrNoRoute", err)
	}
	var ne *NackError
	if !errors.As(err, &ne) || ne.Code != "NO_ROUTE" || ne.Reason != "Unroutable to nobody@fame.fabric" {
		t.Fatalf("err = %#v", err)
	}
	if _, err := client.Stream(context.Background(), "bad address", "x", nil); !errors.Is(err, envelope.ErrBadAddress) {
		t.Errorf("Stream to a malformed address: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	f := newFakeSentinel(t)
	_, client := agentAndClient(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := client.Call(ctx, "math@fame.fabric", "block", nil, nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

func TestAtLeastOnceAckAndDedupe(t *testing.T) {
	f := newFakeSentinel(t)
	// The client re-sends its request well before the agent re-sends its reply, so both
	// re-send paths run.
	fast := RetryPolicy{MaxRetries: 5, BaseDelay: 20 * time.Millisecond, MaxDelay: 40 * time.Millisecond, Factor: 2}
	slow := RetryPolicy{MaxRetries: 5, BaseDelay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond, Factor: 2}
	var execs atomic.Int64
	acfg, ccfg := testConfig(f, "fame.fabric"), testConfig(f)
	for _, c := range []*Config{&acfg, &ccfg} {
		c.Delivery, c.SenderRetry, c.ReceiverRetry = AtLeastOnce, fast, slow
	}
	agent := connect(t, acfg)
	if err := agent.Serve(context.Background(), "math@fame.fabric", testOps("a", &execs)); err != nil {
		t.Fatal(err)
	}
	client := connect(t, ccfg)
	// Lose the agent's first delivery ack and its first reply: the client re-sends the request
	// (same id), and the agent re-sends the reply until acked.
	var lostAck, lostReply atomic.Bool
	f.drop = func(e *envelope.Envelope) bool {
		if e.SID != envelope.SecureDigest(agent.AssignedPath()) {
			return false
		}
		switch e.FrameType() {
		case envelope.TypeDeliveryAck:
			return lostAck.CompareAndSwap(false, true)
		case envelope.TypeData:
			return lostReply.CompareAndSwap(false, true)
		}
		return false
	}
	var got int
	if err := client.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": 3, "y": 4}, &got); err != nil || got != 7 {
		t.Fatalf("add = %d, %v", got, err)
	}
	if n := execs.Load(); n != 1 {
		t.Errorf("add executed %d times, want exactly 1", n)
	}
	// The client's ack of the reply is queued before the reply is handed to Call; give it
	// time to reach the sentinel.
	waitFor(t, "client's ack of the reply", func() bool {
		for _, e := range f.received(client.SystemID()) {
			if e.FrameType() == envelope.TypeDeliveryAck {
				return true
			}
		}
		return false
	})
	var reqs int
	reqIDs := map[string]int{}
	for _, e := range f.received(client.SystemID()) {
		switch e.FrameType() {
		case envelope.TypeData:
			reqs++
			reqIDs[e.ID]++
			if e.RType != envelope.RTypeAck|envelope.RTypeReply {
				t.Errorf("request rtype = %d, want 3", e.RType)
			}
		}
	}
	if reqs < 2 || len(reqIDs) != 1 {
		t.Errorf("client sent %d requests with %d distinct ids, want >= 2 re-sends of one id", reqs, len(reqIDs))
	}
	var replies, agentAcks int
	for _, e := range f.received(agent.SystemID()) {
		switch e.FrameType() {
		case envelope.TypeData:
			replies++
			if e.RType != envelope.RTypeAck {
				t.Errorf("reply rtype = %d, want 1", e.RType)
			}
		case envelope.TypeDeliveryAck:
			agentAcks++
		}
	}
	if replies < 2 || agentAcks < 2 {
		t.Errorf("agent sent %d replies and %d acks, want the lost ones re-sent", replies, agentAcks)
	}
}

func TestCreditUpdatesEvery24(t *testing.T) {
	f := newFakeSentinel(t)
	agent, client := agentAndClient(t, f, nil)
	const calls = 50
	for i := 0; i < calls; i++ {
		if err := client.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": i, "y": 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var clientFlow string
	for _, e := range f.received(client.SystemID()) {
		if e.FrameType() == envelope.TypeData {
			clientFlow = e.FlowID
			break
		}
	}
	var updates int
	for _, e := range f.received(agent.SystemID()) {
		if e.FrameType() != envelope.TypeCreditUpdate {
			continue
		}
		fr, _ := e.DecodeFrame()
		cu := fr.(*envelope.CreditUpdate)
		if e.FlowID != cu.FlowID || cu.Credits != 32 || e.SeqID != 0 || e.FlowFlags != envelope.FlowAck || e.SID != "" || e.To != "" {
			t.Errorf("bad CreditUpdate envelope: %+v frame %+v", e, cu)
		}
		if cu.FlowID == clientFlow {
			updates++
		}
	}
	if want := calls / creditThreshold; updates != want {
		t.Errorf("agent sent %d CreditUpdates for the client's flow after %d requests, want %d", updates, calls, want)
	}
}

func TestSeqStampingPerFlow(t *testing.T) {
	f := newFakeSentinel(t)
	_, client := agentAndClient(t, f, nil)
	for i := 0; i < 3; i++ {
		if err := client.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": 1, "y": 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	next := map[string]int64{}
	for _, e := range f.received(client.SystemID()) {
		want, seen := next[e.FlowID]
		wantFlags := envelope.FlowFlags(0)
		if !seen {
			wantFlags = envelope.FlowSyn
		}
		if e.SeqID != want || e.FlowFlags != wantFlags {
			t.Errorf("%s on flow %s: seq=%d flags=%d, want %d/%d", e.FrameType(), e.FlowID, e.SeqID, e.FlowFlags, want, wantFlags)
		}
		next[e.FlowID] = want + 1
	}
}

// waitFor polls cond. Most tests run over loopback sockets, whose goroutines block in the
// network poller where testing/synctest cannot see them, so this sleeps in real time; in a
// synctest bubble (newBubbleSentinel) the same sleep advances fake time instead.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReconnectAfterSentinelDrop(t *testing.T) {
	f := newFakeSentinel(t)
	agent, client := agentAndClient(t, f, nil)
	f.dropAll()
	waitFor(t, "agent re-attach", func() bool { return f.attachCount(agent.SystemID()) >= 2 })
	waitFor(t, "client re-attach", func() bool { return f.attachCount(client.SystemID()) >= 2 })
	var got int
	// The re-bind follows the re-attach; the call waits for the route by retrying NO_ROUTE.
	waitFor(t, "call after reconnect", func() bool {
		return client.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": 2, "y": 2}, &got) == nil
	})
	if got != 4 {
		t.Errorf("add after reconnect = %d", got)
	}
}

func TestReconnectAfterMissedHeartbeats(t *testing.T) {
	f := newFakeSentinel(t)
	f.noHeartbeat = true
	cfg := testConfig(f)
	cfg.HeartbeatInterval = 20 * time.Millisecond
	n := connect(t, cfg)
	waitFor(t, "re-attach after missed heartbeat acks", func() bool { return f.attachCount(n.SystemID()) >= 2 })
	var beats int
	for _, e := range f.received(n.SystemID()) {
		if e.FrameType() == envelope.TypeNodeHeartbeat {
			beats++
			if e.CorrID == "" || e.SID == "" || e.To != "" {
				t.Errorf("bad heartbeat envelope %+v", e)
			}
		}
	}
	if beats == 0 {
		t.Error("no NodeHeartbeat sent")
	}
}

// Real sockets and real time, not a synctest bubble: the leak check counts every goroutine of
// the process, and fake time would run past goroutines outside the bubble that are still
// ending (the count would fail at random).
func TestCloseNormalAndNoLeak(t *testing.T) {
	f := newFakeSentinel(t)
	before := runtime.NumGoroutine()
	acfg, ccfg := testConfig(f, "*.fame.fabric"), testConfig(f)
	agent, err := Connect(context.Background(), acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Serve(context.Background(), "math@fame.fabric", testOps("a", nil)); err != nil {
		t.Fatal(err)
	}
	client, err := Connect(context.Background(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = client.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": i, "y": i}, nil)
		}()
	}
	wg.Wait()
	// A handler still running at Close must see its context cancelled.
	go func() { _ = client.Call(context.Background(), "math@fame.fabric", "block", nil, nil) }()
	time.Sleep(50 * time.Millisecond) // real sockets: let the blocking call reach its handler
	agent.Close()
	client.Close()
	if err := client.Call(context.Background(), "math@fame.fabric", "add", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close: %v, want ErrClosed", err)
	}
	waitFor(t, "close status", func() bool { _, ok := f.closeStatus(agent.SystemID()); return ok })
	if c, _ := f.closeStatus(agent.SystemID()); c != websocket.StatusNormalClosure {
		t.Errorf("agent closed with %d, want 1000", c)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestShowEnvelopes(t *testing.T) {
	f := newFakeSentinel(t)
	var mu sync.Mutex
	var buf bytes.Buffer
	cfg := testConfig(f)
	cfg.ShowEnvelopes = true
	cfg.ShowWriter = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	n := connect(t, cfg)
	n.Close()
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"Sent envelope 🚀\n{\n  \"version\": \"1.0\"", "Received envelope 📨", `"type": "NodeAttach"`, `"type": "NodeAttachAck"`} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }
