package connengine

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/bufpool"
	"github.com/fame-go/fame/internal/corkconn"
)

// frameWriter stands in for the WebSocket library: each message goes to w as a 4-byte length
// and the bytes, in one Write (as the library writes a frame through its buffer).
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) Write(_ context.Context, _ websocket.MessageType, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(p)), uint32(len(p)))
	_, err := f.w.Write(append(b, p...))
	return err
}

func msg(n int, tag byte) *[]byte {
	b := bufpool.Get()
	for range n {
		*b = append(*b, tag)
	}
	return b
}

// tcpPair returns a corked client socket and the server end of a loopback TCP connection.
func tcpPair(t *testing.T) (*corkconn.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-acc
	t.Cleanup(func() { c.Close(); srv.Close() })
	return corkconn.Wrap(c), srv
}

type harness struct {
	e       *Engine
	spawned atomic.Int32
	failed  chan error
	done    chan struct{}
	wg      sync.WaitGroup
}

func newHarness(cork *corkconn.Conn, w io.Writer, lim Limits, slow time.Duration) *harness {
	h := &harness{failed: make(chan error, 4), done: make(chan struct{})}
	h.e = New(Config{WS: &frameWriter{w: w}, Cork: cork, Limits: lim, SlowConsumer: slow, Done: h.done,
		Go: func(f func()) {
			h.spawned.Add(1)
			h.wg.Add(1)
			go func() { defer h.wg.Done(); f() }()
		},
		WriteFailed: func(err error) { h.failed <- err },
	})
	h.e.Start()
	return h
}

// TestDirectWriteNeedsNoWriter: on an idle connection whose peer reads, every envelope is
// written by its sender, in order, and no writer goroutine is ever started.
func TestDirectWriteNeedsNoWriter(t *testing.T) {
	cork, srv := tcpPair(t)
	h := newHarness(cork, cork, Limits{Count: 16, Bytes: 1 << 20, GlobalBytes: 1 << 30}, time.Second)
	r := bufio.NewReader(srv)
	for i := range 200 {
		if why := h.e.Send(msg(100, byte(i)), nil); why != OK {
			t.Fatalf("send %d: %q", i, why)
		}
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(r, body); err != nil || body[0] != byte(i) {
			t.Fatalf("message %d: %v, tag %d", i, err, body[0])
		}
	}
	if n := h.spawned.Load(); n != 0 {
		t.Fatalf("%d writer goroutines started for direct writes to an idle connection", n)
	}
	close(h.done)
	h.wg.Wait()
}

// TestSlowPeerNeverBlocksSender: the peer reads nothing. Senders never wait: what the socket
// does not take goes to the writer, the queue's bound refuses the rest, and the writer cuts
// the peer at the slow-consumer deadline.
func TestSlowPeerNeverBlocksSender(t *testing.T) {
	cork, _ := tcpPair(t)
	h := newHarness(cork, cork, Limits{Count: 8, Bytes: 1 << 30, GlobalBytes: 1 << 30}, 300*time.Millisecond)
	refused := 0
	for range 10000 { // 640 MB offered: far past any socket buffer
		switch why := h.e.Send(msg(64<<10, 'x'), nil); why {
		case OK:
		case RefusedQueue:
			refused++
		case Closed:
		default:
			t.Fatalf("send: %q", why)
		}
		if refused > 100 {
			break
		}
	}
	if refused == 0 {
		t.Fatal("a peer that reads nothing never filled the queue")
	}
	select {
	case err := <-h.failed:
		if !IsSlowConsumer(err) {
			t.Fatalf("writer failed with %v, want the slow-consumer deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("slow consumer never cut")
	}
	h.e.Close()
	close(h.done)
	h.wg.Wait()
	if h.e.Queue().QueuedBytes() != 0 {
		t.Fatalf("closed engine holds %d bytes", h.e.Queue().QueuedBytes())
	}
}

// TestWriterLingersThenExits (fake time): a writer started by a queued envelope writes it,
// stays WriterLinger for more, and then exits, leaving no ring; a push during the linger is
// written by the same writer.
func TestWriterLingersThenExits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var global atomic.Int64
		q := NewQueue(&global, Limits{Count: 16, Bytes: 1 << 20, GlobalBytes: 1 << 20})
		done := make(chan struct{})
		var spawned, exited, written atomic.Int32
		q.SetWriter(func() {
			spawned.Add(1)
			go func() {
				defer exited.Add(1)
				q.Run(done, func(b []Item) bool { written.Add(int32(len(b))); return true })
			}()
		})
		steps := []struct {
			wait           time.Duration
			push           bool
			spawn, exit    int32
			wrote          int32
			ringAfterwards bool
		}{
			{push: true, spawn: 1, exit: 0, wrote: 1, ringAfterwards: true},
			{wait: WriterLinger / 2, push: true, spawn: 1, exit: 0, wrote: 2, ringAfterwards: true},
			{wait: WriterLinger - time.Millisecond, spawn: 1, exit: 0, wrote: 2, ringAfterwards: true},
			{wait: 2 * time.Millisecond, spawn: 1, exit: 1, wrote: 2},
			{push: true, spawn: 2, exit: 1, wrote: 3, ringAfterwards: true},
			{wait: WriterLinger + time.Millisecond, spawn: 2, exit: 2, wrote: 3},
		}
		for i, s := range steps {
			time.Sleep(s.wait)
			if s.push && q.Push(msg(10, 'a'), nil) != OK {
				t.Fatalf("step %d: push refused", i)
			}
			synctest.Wait()
			q.mu.Lock()
			ring := q.ring != nil
			q.mu.Unlock()
			if spawned.Load() != s.spawn || exited.Load() != s.exit || written.Load() != s.wrote || ring != s.ringAfterwards {
				t.Fatalf("step %d: spawned %d exited %d wrote %d ring %v; want %d %d %d %v", i,
					spawned.Load(), exited.Load(), written.Load(), ring, s.spawn, s.exit, s.wrote, s.ringAfterwards)
			}
		}
		close(done)
	})
}

// TestBatchDeadlineCutsSlowConsumer (fake time): the writer's batch runs into the
// slow-consumer deadline against a peer that reads nothing, and the failure says so.
func TestBatchDeadlineCutsSlowConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe() // no descriptor: no direct writes, everything goes through the writer
		defer b.Close()
		cork := corkconn.Wrap(a)
		h := newHarness(cork, cork, Limits{Count: 16, Bytes: 1 << 20, GlobalBytes: 1 << 20}, 5*time.Second)
		start := time.Now()
		if h.e.Send(msg(100, 'z'), nil) != OK {
			t.Fatal("refused")
		}
		err := <-h.failed
		if !IsSlowConsumer(err) || time.Since(start) != 5*time.Second {
			t.Fatalf("after %v: %v, want the slow-consumer deadline at 5s", time.Since(start), err)
		}
		h.e.Close()
		close(h.done)
		h.wg.Wait()
		a.Close()
	})
}

// TestDirectClaimsInterleaveWithWriter: senders going direct and queueing at random, with
// rests handed over: one writer at a time, every envelope once, in each sender's order.
func TestDirectClaimsInterleaveWithWriter(t *testing.T) {
	var global atomic.Int64
	q := NewQueue(&global, Limits{Count: 64, Bytes: 1 << 20, GlobalBytes: 1 << 30})
	done := make(chan struct{})
	var active atomic.Int32
	var mu sync.Mutex
	last := map[uint32]uint32{}
	var got atomic.Int64
	var bad atomic.Pointer[string]
	fail := func(s string) { bad.CompareAndSwap(nil, &s) }
	record := func(b []byte) {
		src, seq := binary.BigEndian.Uint32(b[:4]), binary.BigEndian.Uint32(b[4:8])
		mu.Lock()
		if prev, ok := last[src]; ok && seq != prev+1 {
			fail("out of order")
		}
		last[src] = seq
		mu.Unlock()
		got.Add(1)
	}
	var wg sync.WaitGroup
	q.SetWriter(func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.Run(done, func(batch []Item) bool {
				if active.Add(1) != 1 {
					fail("two writers at once")
				}
				for _, it := range batch {
					record(*it.B)
				}
				active.Add(-1)
				return true
			})
		}()
	})
	const senders, per = 6, 3000
	var sw sync.WaitGroup
	for s := range senders {
		sw.Add(1)
		go func() {
			defer sw.Done()
			src := new(int)
			for i := range per {
				b := make([]byte, 8)
				binary.BigEndian.PutUint32(b, uint32(s))
				binary.BigEndian.PutUint32(b[4:], uint32(i))
				for {
					why, claimed := q.push(&b, src, i%3 != 0)
					if why != OK {
						time.Sleep(10 * time.Microsecond)
						continue
					}
					if claimed {
						if active.Add(1) != 1 {
							fail("direct write beside a writer")
						}
						record(b)
						active.Add(-1)
						q.EndDirect(i%7 == 0)
					}
					break
				}
			}
		}()
	}
	sw.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < senders*per && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(done)
	wg.Wait()
	if p := bad.Load(); p != nil {
		t.Fatal(*p)
	}
	if n := got.Load(); n != senders*per {
		t.Fatalf("%d of %d written", n, senders*per)
	}
	if global.Load() != 0 {
		t.Fatalf("global %d after draining", global.Load())
	}
}

func TestStamper(t *testing.T) {
	s := NewStamper("own", 1)
	cases := []struct {
		flow  string
		seq   int64
		flags envelope.FlowFlags
	}{
		{"own", 1, 0}, {"a", 0, envelope.FlowSyn}, {"a", 1, 0}, {"own", 2, 0}, {"b", 0, envelope.FlowSyn}, {"a", 2, 0},
	}
	for i, c := range cases {
		seq, fl := s.Next([]byte(c.flow))
		if seq != c.seq || fl != c.flags {
			t.Fatalf("case %d (%s): %d %v, want %d %v", i, c.flow, seq, fl, c.seq, c.flags)
		}
	}
	for i := range MaxFlows + 10 {
		s.Next([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}
	if s.Flows() > MaxFlows {
		t.Fatalf("stamper remembers %d flows, bound %d", s.Flows(), MaxFlows)
	}
	x := NewStamper("x", 0)
	if seq, fl := x.Next([]byte("x")); seq != 0 || fl != envelope.FlowSyn {
		t.Fatalf("own flow from 0: %d %v", seq, fl)
	}
}

func TestRecvCredits(t *testing.T) {
	var r RecvCredits
	after := CreditWindow - CreditLowWater
	for _, flow := range []string{"first", "second", "first"} {
		for i := 1; i <= 2*after; i++ {
			if got, want := r.Count([]byte(flow)), i%after == 0; got != want {
				t.Fatalf("flow %s envelope %d: grant %v, want %v", flow, i, got, want)
			}
		}
	}
	if r.Count(nil) {
		t.Fatal("an envelope without a flow is not counted")
	}
	// Past MaxFlows the counters are forgotten; a flow met afterwards is granted at once.
	for i := range MaxFlows + 1 {
		r.Count([]byte{'f', byte(i), byte(i >> 8)})
	}
	if r.Flows() > MaxFlows {
		t.Fatalf("%d flows counted, bound %d", r.Flows(), MaxFlows)
	}
	if !r.Count([]byte("late")) {
		t.Fatal("a flow met after the counters were forgotten must be granted at once")
	}
	if r.Count([]byte("late")) {
		t.Fatal("and then counted normally")
	}
}
