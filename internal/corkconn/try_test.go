//go:build unix

package corkconn

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, the first wrapped.
func tcpPair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-acc
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); peer.Close() })
	return Wrap(d), peer
}

// TestTryUncorkStalledPeer: against a peer that reads nothing, TryUncork returns (it does not
// wait for room) with the rest still corked; writes made meanwhile queue behind the rest, and
// Uncork delivers every byte in order once the peer reads.
func TestTryUncorkStalledPeer(t *testing.T) {
	c, peer := tcpPair(t)
	if !c.CanTry() || !c.Idle() {
		t.Fatalf("a fresh TCP connection: CanTry %v, Idle %v; want both", c.CanTry(), c.Idle())
	}
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	var stalled bool
	for i := 0; i < 1000 && !stalled; i++ { // the kernel's buffers hold some MB at most
		chunk[0] = byte(i)
		c.Cork()
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want.Write(chunk)
		done, err := c.TryUncork()
		if err != nil {
			t.Fatal(err)
		}
		stalled = !done
	}
	if !stalled {
		t.Fatal("64 MB went out to a peer that reads nothing")
	}
	if c.Idle() {
		t.Fatal("Idle with bytes left in the cork")
	}
	// A write after the partial flush (a pong from another goroutine) goes behind the rest.
	if _, err := c.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	want.WriteString("tail")
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(want.Len())))
		got <- b
	}()
	if err := c.Uncork(0); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("peer read %d bytes, want %d in order", len(b), want.Len())
	}
	if !c.Idle() {
		t.Fatal("not Idle after Uncork")
	}
}

// TestTryUncorkCases: what TryUncork does with nothing held, without a socket, after an error.
func TestTryUncorkCases(t *testing.T) {
	for _, tc := range []struct {
		name     string
		conn     func(t *testing.T) *Conn
		write    string
		wantDone bool
		wantErr  bool
	}{
		{"nothing held", func(t *testing.T) *Conn { c, _ := tcpPair(t); return c }, "", true, false},
		{"all taken", func(t *testing.T) *Conn { c, _ := tcpPair(t); return c }, "hello", true, false},
		{"no socket: nothing written", func(t *testing.T) *Conn { return Wrap(&countingConn{}) }, "hello", false, false},
		{"closed socket", func(t *testing.T) *Conn { c, p := tcpPair(t); c.Conn.Close(); p.Close(); return c }, "hello", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.conn(t)
			c.Cork()
			if tc.write != "" {
				if _, err := c.Write([]byte(tc.write)); err != nil {
					t.Fatal(err)
				}
			}
			done, err := c.TryUncork()
			if done != tc.wantDone || (err != nil) != tc.wantErr {
				t.Fatalf("TryUncork = %v, %v; want done %v, error %v", done, err, tc.wantDone, tc.wantErr)
			}
			if tc.wantErr {
				if _, err2 := c.TryUncork(); err2 == nil {
					t.Fatal("the error is not sticky")
				}
			}
		})
	}
}

// TestTryCorkDoesNotWait: while another goroutine is stuck writing to a peer that reads
// nothing (a ping, or a writer's flush), TryCork refuses at once instead of waiting for it;
// a sender that must not wait then queues.
func TestTryCorkDoesNotWait(t *testing.T) {
	c, peer := tcpPair(t)
	big := make([]byte, 256<<20) // far more than the kernel buffers: the write blocks
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(big)
		wrote <- err
	}()
	for c.mu.TryLock() { // until the writer holds the connection
		c.mu.Unlock()
		select {
		case err := <-wrote:
			t.Fatalf("256 MB written to a peer that reads nothing: %v", err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	res := make(chan bool, 1)
	go func() { res <- c.TryCork() }()
	select {
	case ok := <-res:
		if ok {
			t.Fatal("TryCork corked a connection in the middle of a write")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TryCork waited for a write blocked on the peer")
	}
	peer.Close()
	c.Conn.Close()
	<-wrote
}
