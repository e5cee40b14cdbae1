package corkconn

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// countingConn records each Write call.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

func TestCorkCoalesces(t *testing.T) {
	cc := &countingConn{}
	c := Wrap(cc)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	c.Cork()
	for _, s := range []string{"b", "c", "d"} {
		if n, err := c.Write([]byte(s)); err != nil || n != 1 {
			t.Fatal(n, err)
		}
	}
	if len(cc.writes) != 1 {
		t.Fatalf("corked writes went through: %q", cc.writes)
	}
	if err := c.Uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 2 || string(cc.writes[1]) != "bcd" {
		t.Fatalf("writes %q", cc.writes)
	}
	if _, err := c.Write([]byte("e")); err != nil || len(cc.writes) != 3 {
		t.Fatalf("uncorked write not direct: %q %v", cc.writes, err)
	}
	if err := c.Uncork(0); err != nil || len(cc.writes) != 3 {
		t.Fatal("empty uncork wrote")
	}
}

func TestCorkBoundsBuffer(t *testing.T) {
	cc := &countingConn{}
	c := Wrap(cc)
	c.Cork()
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for i := 0; i < 8; i++ {
		_, _ = c.Write(chunk)
	}
	if len(cc.writes) == 0 {
		t.Fatal("a cork held more than its bound")
	}
	_ = c.Uncork(0)
	total := 0
	for _, w := range cc.writes {
		total += len(w)
	}
	if total != 8*len(chunk) {
		t.Fatalf("wrote %d of %d bytes", total, 8*len(chunk))
	}
}

func TestOverPipe(t *testing.T) {
	a, b := net.Pipe()
	c := Wrap(a)
	go func() {
		c.Cork()
		_, _ = c.Write([]byte("hello "))
		_, _ = c.Write([]byte("world"))
		_ = c.Uncork(time.Second)
		_ = c.Close()
	}()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("%q %v", got, err)
	}
}
