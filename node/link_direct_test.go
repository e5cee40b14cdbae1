package node

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/corkconn"
	"github.com/fame-go/fame/internal/wsengine"
)

// TestLinkDirectKeepsOrder: sends on a link whose writer is idle are written by the sender
// itself; a send made while the writer is busy queues, and every later send queues behind it
// until the writer has handled it. The peer sees one flow's envelopes in the order they were
// sent, stamped 0, 1, 2, ... (SYN first), whichever way each went.
func TestLinkDirectKeepsOrder(t *testing.T) {
	got := make(chan *envelope.Envelope, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if e, err := envelope.Decode(b); err == nil {
				got <- e
			}
		}
	}))
	defer srv.Close()
	var cork atomic.Pointer[corkconn.Conn]
	tr := &http.Transport{DialContext: corkconn.Dialer(&net.Dialer{}, func(c *corkconn.Conn) { cork.Store(c) })}
	conn, _, err := websocket.Dial(t.Context(), srv.URL, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	var busy atomic.Int64
	l := newLink(conn, cork.Load(), linkDeps{
		log: discardLogger(), heartbeat: time.Hour, sendQueue: 8, flowControl: true,
		seal: func(*envelope.Envelope) error { return nil }, deliver: func(*link, *envelope.Envelope) {},
		busy: &busy,
	})
	l.lastAck.Store(time.Now().UnixNano())
	l.start()
	defer l.shutdown()

	send := func(i int) {
		env, err := envelope.New(&envelope.Data{Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		env.FlowID, env.TraceID = "F", string(rune('a'+i))
		if err := l.send(t.Context(), env); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(i int) {
		t.Helper()
		select {
		case e := <-got:
			wantFlags := envelope.FlowFlags(0)
			if i == 0 {
				wantFlags = envelope.FlowSyn
			}
			if e.TraceID != string(rune('a'+i)) || e.SeqID != int64(i) || e.FlowFlags != wantFlags {
				t.Fatalf("envelope %d: trace %q seq %d flags %v; want %q, %d, %v", i, e.TraceID, e.SeqID, e.FlowFlags, string(rune('a'+i)), i, wantFlags)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("envelope %d never arrived", i)
		}
	}
	// On an idle link a send is written by the sender. Not always: a write in progress on
	// the socket (the HTTP client's, a pong) makes it queue, so of a few sends some must be.
	idle := func() { // nothing queued or being written; no burst
		for l.q.Len() != 0 || l.q.Bytes() != 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(2 * wsengine.BurstGap)
	}
	// sentDirect sends i and reports whether it was written by the sender (not queued).
	sentDirect := func(i int) bool {
		before := l.q.Mark()
		send(i)
		return l.q.Mark() == before
	}
	direct := 0
	for i := range 5 {
		idle()
		if sentDirect(i) {
			direct++
		}
		recv(i)
	}
	if direct == 0 {
		t.Fatal("no send on an idle link was written directly")
	}
	// The socket is busy (another direct write in progress): sends queue.
	for {
		idle()
		if l.q.ClaimDirect() {
			break
		}
	}
	before := l.q.Mark()
	send(5)
	send(6)
	if n := l.q.Mark() - before; n != 2 {
		l.q.EndDirect(false)
		t.Fatalf("%d queued while the socket was busy, want 2", n)
	}
	l.q.EndDirect(false)
	send(7) // queued behind 5 and 6 unless the writer has handled them: never before them
	for i := 5; i < 8; i++ {
		recv(i)
	}
	// With two calls or requests in progress on the node, sends go to the writer (which
	// batches them) even on an idle link; with one, they may be direct again.
	busy.Store(2)
	for i := 8; i < 11; i++ {
		idle()
		env, err := envelope.New(&envelope.Data{Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		env.FlowID, env.TraceID = "F", string(rune('a'+i))
		before := l.q.Mark()
		if err := l.send(t.Context(), env); err != nil {
			t.Fatal(err)
		}
		if l.q.Mark() == before {
			t.Fatalf("send %d with 2 in progress was written directly", i)
		}
		recv(i)
	}
	busy.Store(1)
	direct = 0
	for i := 11; i < 16; i++ {
		idle()
		if sentDirect(i) {
			direct++
		}
		recv(i)
	}
	if direct == 0 {
		t.Fatal("with one in progress, no send on an idle link was written directly")
	}
}
