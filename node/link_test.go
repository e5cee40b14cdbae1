package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func marshal(t *testing.T, f envelope.Frame, flow string) []byte {
	t.Helper()
	env, err := envelope.New(f)
	if err != nil {
		t.Fatal(err)
	}
	env.FlowID = flow
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLinkReceive drives a link's inbound path without a socket: decode, inbound hooks,
// credits granted after creditThreshold envelopes of a flow, CreditUpdates applied by the
// link itself, everything else handed to deliver.
func TestLinkReceive(t *testing.T) {
	var delivered []*envelope.Envelope
	l := newLink(nil, nil, linkDeps{
		log:         discardLogger(),
		flowControl: true,
		inboundHooks: []EnvelopeHook{func(e *envelope.Envelope) error {
			if e.TraceID == "drop-me" {
				return errors.New("hook says no")
			}
			return nil
		}},
		deliver: func(_ *link, e *envelope.Envelope) { delivered = append(delivered, e) },
	})
	data := marshal(t, &envelope.Data{Payload: []byte(`{}`)}, "F")
	for range creditThreshold {
		l.receive(data)
	}
	if len(delivered) != creditThreshold {
		t.Fatalf("delivered %d, want %d", len(delivered), creditThreshold)
	}
	queued := l.q.Take(nil, 10, 1<<20)
	if len(queued) != 1 {
		t.Fatalf("%d queued after %d envelopes of a flow, want one CreditUpdate", len(queued), creditThreshold)
	}
	cuEnv, err := envelope.Decode(*queued[0].B)
	if err != nil {
		t.Fatal(err)
	}
	f, err := cuEnv.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	if cu, ok := f.(*envelope.CreditUpdate); !ok || cu.FlowID != "F" || cu.Credits != creditWindow || cuEnv.FlowFlags != envelope.FlowAck || cuEnv.SeqID != 0 {
		t.Fatalf("queued %+v (seq %d, flags %v), want CreditUpdate{F, %d} with ACK, seqId 0", f, cuEnv.SeqID, cuEnv.FlowFlags, creditWindow)
	}
	l.q.Release(queued)

	// Flow G has spent its window: the next envelope is held until the sentinel grants.
	l.gate.Spent("G", creditWindow)
	held, err := envelope.New(&envelope.Data{Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	held.FlowID = "G"
	if !l.post(held) || l.q.Len() != 0 || l.gate.Held() != 1 {
		t.Fatalf("post at zero credits: queued %d, held %d; want 0, 1", l.q.Len(), l.gate.Held())
	}
	l.receive(marshal(t, &envelope.CreditUpdate{FlowID: "G", Credits: 7}, "G"))
	if l.q.Len() != 1 || l.gate.Held() != 0 || len(delivered) != creditThreshold {
		t.Fatalf("after CreditUpdate{G, 7}: queued %d, held %d, delivered %d: the grant releases the held envelope and is not delivered",
			l.q.Len(), l.gate.Held(), len(delivered))
	}
	l.q.Release(l.q.Take(nil, 10, 1<<20))

	env, err := envelope.New(&envelope.Data{Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	env.TraceID = "drop-me"
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	l.receive(b)
	l.receive([]byte("not an envelope"))
	if len(delivered) != creditThreshold {
		t.Fatalf("delivered %d: hook-dropped and undecodable envelopes must not be delivered", len(delivered))
	}
	if n := l.q.Len(); n != 0 {
		t.Fatalf("%d items queued by dropped envelopes", n)
	}
}

// TestLinkCreditsEarnedBeforeStart: credits earned while attaching (no writer yet) are
// queued, for the writer start enables.
func TestLinkCreditsEarnedBeforeStart(t *testing.T) {
	l := newLink(nil, nil, linkDeps{log: discardLogger(), flowControl: true})
	env, err := envelope.New(&envelope.Data{})
	if err != nil {
		t.Fatal(err)
	}
	env.FlowID = "F"
	for range creditThreshold {
		l.countCredit(env)
	}
	queued := l.q.Take(nil, 10, 1<<20)
	defer l.q.Release(queued)
	if len(queued) != 1 {
		t.Fatalf("%d queued, want one CreditUpdate", len(queued))
	}
	if e, err := envelope.Decode(*queued[0].B); err != nil || e.FlowID != "F" || e.FrameType() != envelope.TypeCreditUpdate {
		t.Fatalf("queued %v (%v), want a CreditUpdate for F", e, err)
	}
}

// pipeLink dials a websocket server over in-memory pipes and wraps the client end in a link.
func pipeLink(t *testing.T, serve func(*websocket.Conn), deps linkDeps) *link {
	t.Helper()
	ml := newMemListener()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		serve(c)
	})}
	go func() { _ = srv.Serve(ml) }()
	t.Cleanup(func() { _ = srv.Close() })
	conn, _, err := websocket.Dial(t.Context(), "ws://fake-sentinel/", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: ml.dial}}})
	if err != nil {
		t.Fatal(err)
	}
	l := newLink(conn, nil, deps)
	l.lastAck.Store(time.Now().UnixNano())
	return l
}

// TestLinkReportsLossOnce: a link whose heartbeats go unanswered fails after two intervals
// and tells its owner once, with the cause; shutdown by the owner is not reported.
func TestLinkReportsLossOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var causes []error
		deps := linkDeps{
			log: discardLogger(), heartbeat: time.Second, sendQueue: 8, flowControl: true,
			seal:    func(*envelope.Envelope) error { return nil },
			deliver: func(*link, *envelope.Envelope) {},
			lost: func(_ *link, cause error) {
				mu.Lock()
				causes = append(causes, cause)
				mu.Unlock()
			},
		}
		silent := func(c *websocket.Conn) { // reads everything, acknowledges nothing
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}

		l := pipeLink(t, silent, deps)
		l.start()
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		select {
		case <-l.done():
		default:
			t.Fatal("link still up after two heartbeat intervals without an ack")
		}
		l.shutdown()
		mu.Lock()
		if len(causes) != 1 || !strings.Contains(causes[0].Error(), "missed heartbeat") {
			t.Fatalf("lost reported %v, want once with the missed heartbeat", causes)
		}
		mu.Unlock()

		quiet := pipeLink(t, silent, deps)
		quiet.start()
		quiet.shutdown()
		select {
		case <-quiet.done():
		default:
			t.Fatal("link not done after shutdown")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(causes) != 1 {
			t.Fatalf("shutdown reported as a loss: %v", causes)
		}
	})
}

// TestLinkSendWaitsForRoom: a sentinel that stops reading fills the link's send queue;
// send then waits for room until its context ends (its error, nothing queued past the
// bound), post refuses at once, and the link's end releases a waiting send with
// errLinkLost.
func TestLinkSendWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		deps := linkDeps{
			log: discardLogger(), heartbeat: time.Hour, sendQueue: 4,
			seal:    func(*envelope.Envelope) error { return nil },
			deliver: func(*link, *envelope.Envelope) {},
			lost:    func(*link, error) {},
		}
		l := pipeLink(t, func(*websocket.Conn) { <-stop }, deps) // never reads
		defer close(stop)
		l.start()
		env := func() *envelope.Envelope {
			e, err := envelope.New(&envelope.Data{Payload: []byte(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			e.FlowID = "F"
			return e
		}
		// The writer takes the first envelope and blocks on the socket; four more fill the queue.
		for i := range 5 {
			if err := l.send(t.Context(), env()); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			synctest.Wait()
		}
		if n := l.q.Len(); n != 4 {
			t.Fatalf("%d queued, want the bound of 4", n)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := l.send(ctx, env()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("send on a full queue: %v, want its context's deadline", err)
		}
		if l.post(env()) {
			t.Fatal("post on a full queue accepted")
		}
		if n := l.q.Len(); n != 4 {
			t.Fatalf("%d queued after the refusals, want 4", n)
		}
		waiting := make(chan error, 1)
		go func() { waiting <- l.send(t.Context(), env()) }()
		synctest.Wait()
		l.shutdown()
		if err := <-waiting; !errors.Is(err, errLinkLost) {
			t.Fatalf("waiting send when the link ended: %v, want errLinkLost", err)
		}
	})
}
