package ceiling

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/loadgen"
)

func TestRelayAnswersEveryCall(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "batched"}[batched], func(t *testing.T) { answersEveryCall(t, Config{Batched: batched}) })
	}
}

func answersEveryCall(t *testing.T, cfg Config) {
	lo, err := StartLocal(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lo.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	c, err := DialCaller(context.Background(), lo.URL, "t1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a guard only: the machine may be busy
	defer cancel()
	const n = 100
	for i := 0; i < n; i++ {
		if err := c.Call(ctx, 0); err != nil {
			t.Fatalf("sequential call %d: %v", i, err)
		}
	}
	// 50 concurrent callers over the one connection, and a second connection at the same time:
	// every reply must reach its own caller.
	c2, err := DialCaller(context.Background(), lo.URL, "t2", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 51*n)
	for w := 0; w < 51; w++ {
		cc := c
		if w == 50 {
			cc = c2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := cc.Call(ctx, w); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent call: %v", err)
	}
	if len(c.pending) != 0 || len(c2.pending) != 0 {
		t.Fatalf("calls left pending: %d, %d", len(c.pending), len(c2.pending))
	}
}

func TestLoadgenRunThroughRelay(t *testing.T) {
	lo, err := StartLocal(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	c, err := DialCaller(context.Background(), lo.URL, "lg", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Options{Callers: 8, Duration: 200 * time.Millisecond, CallTimeout: 5 * time.Second, CPU: map[string]int{"self": 0}}, c.Call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls() == 0 || res.ErrorCount() != 0 {
		t.Fatalf("%d calls, errors %v", res.Calls(), res.Errors)
	}
}

func TestCallerBeforeAgentIsRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewRelay(Config{}).Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	url := "ws://" + l.Addr().String()
	if err := WaitReady(ctx, url, 100*time.Millisecond); err == nil {
		t.Fatal("relay ready without an agent")
	}
	c, err := DialCaller(ctx, url, "early", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	err = c.Call(cctx, 0)
	if !errors.Is(err, ErrClosed) || websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Fatalf("call without agent: %v (status %v), want ErrClosed with close %v", err, websocket.CloseStatus(err), websocket.StatusTryAgainLater)
	}
}

func TestRelayClosesOnBadEnvelope(t *testing.T) {
	lo, err := StartLocal(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, lo.URL+"/client?id=raw", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"not json`)); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("read after garbage: %v, want close %v", err, websocket.StatusUnsupportedData)
	}
	// The relay still serves a well-behaved caller.
	c, err := DialCaller(ctx, lo.URL, "after", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Call(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

func TestAppendReplyEscapes(t *testing.T) {
	req := map[string]any{"corrId": "a\"b\\c\x01é\xff", "traceId": "t", "replyTo": ReplyAddress("x")}
	out, ok := appendReply(nil, req)
	if !ok {
		t.Fatal("not ok")
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("reply is not JSON: %v\n%s", err, out)
	}
	if m["corrId"] != "a\"b\\c\x01é\uFFFD" || m["to"] != ReplyAddress("x") || !resultIs7(m) {
		t.Fatalf("reply %s", out)
	}
	if _, ok := appendReply(nil, map[string]any{"corrId": 1.0, "traceId": "t", "replyTo": "r"}); ok {
		t.Fatal("numeric corrId accepted")
	}
}
