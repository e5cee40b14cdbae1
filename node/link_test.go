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
	l.sendq = make(chan outItem, 4) // as start makes it

	data := marshal(t, &envelope.Data{Payload: []byte(`{}`)}, "F")
	for range creditThreshold {
		l.receive(data)
	}
	if len(delivered) != creditThreshold {
		t.Fatalf("delivered %d, want %d", len(delivered), creditThreshold)
	}
	select {
	case it := <-l.sendq:
		f, err := it.env.DecodeFrame()
		if err != nil || !it.raw {
			t.Fatalf("queued %+v, %v: want a raw CreditUpdate", it, err)
		}
		if cu := f.(*envelope.CreditUpdate); cu.FlowID != "F" || cu.Credits != creditWindow {
			t.Fatalf("CreditUpdate %+v, want flow F, %d credits", cu, creditWindow)
		}
	default:
		t.Fatalf("no CreditUpdate after %d envelopes of a flow", creditThreshold)
	}

	l.receive(marshal(t, &envelope.CreditUpdate{FlowID: "G", Credits: 7}, "G"))
	if got := l.grants.take(); got["G"] != 7 || len(delivered) != creditThreshold {
		t.Fatalf("grants %v, delivered %d: a CreditUpdate is the link's, not delivered", got, len(delivered))
	}

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
	if len(l.sendq) != 0 {
		t.Fatalf("%d items queued by dropped envelopes", len(l.sendq))
	}
}

// TestLinkCreditsEarnedBeforeStart: credits earned while attaching (no queue yet) are
// queued first by start.
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
	if len(l.pendingCredit) != 1 || l.pendingCredit[0].FlowID != "F" {
		t.Fatalf("pending %v, want one CreditUpdate for F", l.pendingCredit)
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
