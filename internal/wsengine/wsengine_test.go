package wsengine

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/internal/corkconn"
)

// peer is the far end of a test connection: it reads and keeps messages, or (stalled) reads
// nothing until the test ends.
type peer struct {
	got chan []byte
}

// dial connects to a WebSocket peer on loopback and returns the client end and its cork.
func dial(t *testing.T, stalled bool) (*websocket.Conn, *corkconn.Conn, *peer) {
	t.Helper()
	p := &peer{got: make(chan []byte, 16)}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		if stalled {
			<-release
			return
		}
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			p.got <- b
		}
	}))
	var cork atomic.Pointer[corkconn.Conn]
	tr := &http.Transport{DialContext: corkconn.Dialer(&net.Dialer{}, func(c *corkconn.Conn) { cork.Store(c) })}
	ws, _, err := websocket.Dial(context.Background(), srv.URL, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() {
		ws.CloseNow()
		close(release)
		srv.Close()
	})
	if cork.Load() == nil {
		t.Fatal("the dial was not wrapped")
	}
	return ws, cork.Load(), p
}

// within fails the test when f does not return within d: a direct write that waits for a
// peer would hang here. Not a timing assertion: d is orders of magnitude above the cost.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("blocked for %v", d)
	}
}

// TestDirectStalledPeer: direct writes to a peer that reads nothing never wait: once its
// socket is full a write leaves its rest in the cork and returns, and from then on CanDirect
// refuses (senders queue). A sender to another, healthy peer meanwhile writes directly and
// is read at once.
func TestDirectStalledPeer(t *testing.T) {
	slow, slowCork, _ := dial(t, true)
	fast, fastCork, fastPeer := dial(t, false)
	msg := bytes.Repeat([]byte{'s'}, MaxDirect-16)
	var stalled bool
	for i := 0; i < 1000 && !stalled; i++ {
		if !CanDirect(slowCork, len(msg)) || !slowCork.Idle() {
			t.Fatalf("write %d: not idle after a complete direct write", i)
		}
		within(t, 10*time.Second, func() {
			out, err := Direct(slow, slowCork, msg)
			if err != nil || out == Busy {
				t.Error(out, err)
			}
			stalled = out == Partial
		})
		if t.Failed() {
			return
		}
	}
	if !stalled {
		t.Fatal("256 MB written directly to a peer that reads nothing")
	}
	if out, err := Direct(slow, slowCork, []byte("more")); out != Busy || err != nil {
		t.Fatalf("Direct with a direct write's rest still corked: %v, %v; want Busy", out, err)
	}
	for i := range 3 {
		hello := []byte("hello " + strings.Repeat("!", i))
		if !CanDirect(fastCork, len(hello)) || !fastCork.Idle() {
			t.Fatal("the healthy peer's connection is not idle")
		}
		within(t, 10*time.Second, func() {
			if out, err := Direct(fast, fastCork, hello); err != nil || out != Written {
				t.Errorf("healthy peer: Direct = %v, %v", out, err)
			}
		})
		select {
		case b := <-fastPeer.got:
			if !bytes.Equal(b, hello) {
				t.Fatalf("healthy peer read %q, want %q", b, hello)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("healthy peer read nothing")
		}
	}
}

// TestCanDirect: which connections and sizes a sender may write directly.
func TestCanDirect(t *testing.T) {
	_, cork, _ := dial(t, false)
	pipeA, pipeB := net.Pipe()
	defer pipeA.Close()
	defer pipeB.Close()
	for _, tc := range []struct {
		name string
		cork func() *corkconn.Conn
		size int
		want bool
	}{
		{"idle socket", func() *corkconn.Conn { return cork }, 100, true},
		{"largest envelope", func() *corkconn.Conn { return cork }, MaxDirect, true},
		{"over MaxDirect", func() *corkconn.Conn { return cork }, MaxDirect + 1, false},
		{"no cork", func() *corkconn.Conn { return nil }, 100, false},
		{"not a socket", func() *corkconn.Conn { return corkconn.Wrap(pipeA) }, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanDirect(tc.cork(), tc.size); got != tc.want {
				t.Fatalf("CanDirect = %v, want %v", got, tc.want)
			}
		})
	}
	cork.Cork() // a writer's batch
	if cork.TryCork() {
		t.Fatal("TryCork on a connection corked by a writer")
	}
	if err := cork.Uncork(0); err != nil {
		t.Fatal(err)
	}
	if !cork.TryCork() {
		t.Fatal("TryCork refused an idle connection")
	}
}

// TestBurst: which direct writes count as a burst (queued instead).
func TestBurst(t *testing.T) {
	gap := int64(BurstGap)
	for _, tc := range []struct {
		name      string
		now, last int64
		want      bool
	}{
		{"first write", 5, 0, false},
		{"right after the last", 1000 + gap - 1, 1000, true},
		{"a gap later", 1000 + gap, 1000, false},
		{"long after", 1000 + 100*gap, 1000, false},
	} {
		if got := Burst(tc.now, tc.last); got != tc.want {
			t.Errorf("%s: Burst = %v, want %v", tc.name, got, tc.want)
		}
	}
}
