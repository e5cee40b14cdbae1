// Package corkconn coalesces many small socket writes into one system call. The WebSocket
// library flushes every message with its own write(2); a writer goroutine that has several
// envelopes queued corks the connection, writes them all, then uncorks, so the kernel sees one
// write for the batch. Outside a cork, writes go straight through.
//
// It sits under the WebSocket library: the sentinel wraps its listener, nodes wrap the
// connection they dial, and the library writes into the wrapper unaware of the batching.
package corkconn

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fame-go/fame/internal/bufpool"
)

// maxBuffered bounds what a cork holds before it writes anyway: above one largest envelope
// (256 KiB) with its frame header, so that encoding one message into an idle cork never
// writes (internal/wsengine's direct write relies on it).
const maxBuffered = 512 << 10

// Conn is a net.Conn whose writes can be held back (Cork) and sent in one go (Uncork).
type Conn struct {
	net.Conn
	raw syscall.RawConn // the socket itself, for TryUncork's one non-blocking write; nil if not a socket
	// readHook runs before every read from the socket (SetReadHook).
	readHook atomic.Pointer[func()]

	// mu guards the following fields.
	mu     sync.Mutex
	corked bool
	buf    *[]byte // what a cork holds, lent by internal/bufpool while corked (nil otherwise), so
	// that an idle connection (most of a large fabric's) holds none
	err error // sticky write error of a deferred flush
}

// Wrap returns c wrapped; an already wrapped connection is returned as is.
func Wrap(c net.Conn) *Conn {
	if cc, ok := c.(*Conn); ok {
		return cc
	}
	return &Conn{Conn: c, raw: rawOf(c)}
}

// CanTry reports whether TryUncork can write without blocking (the connection is a socket on a
// platform where a single non-blocking write is available).
func (c *Conn) CanTry() bool { return c.raw != nil }

// Idle reports whether the connection is uncorked and holds nothing: a write now goes straight
// to the socket, behind nothing. It waits for a write in progress; senders that must not
// wait use TryCork.
func (c *Conn) Idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.corked && c.buf == nil && c.err == nil
}

// TryCork corks the connection if it is idle (see Idle) and nobody is writing to it right
// now, without waiting: a write blocked on a peer that reads nothing (a ping, say) holds the
// connection, and a sender that must not wait has to go elsewhere. It reports whether the
// connection is now corked by the caller.
func (c *Conn) TryCork() bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	if c.corked || c.buf != nil || c.err != nil {
		return false
	}
	c.corked = true
	return true
}

// TryUncork is Uncork for a sender that must not wait: it makes one non-blocking write of what
// the cork holds. When the socket took it all, the connection is uncorked and done is true.
// Otherwise the rest stays corked (later writes queue behind it, so bytes never reorder) and
// a writer that may block must finish it with Uncork. Without CanTry it writes nothing.
func (c *Conn) TryUncork() (done bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false, c.err
	}
	if c.buf == nil || len(*c.buf) == 0 {
		c.corked = false
		if c.buf != nil {
			c.releaseBufLocked()
		}
		return true, nil
	}
	if c.raw == nil {
		return false, nil
	}
	n, err := tryWrite(c.raw, *c.buf)
	if err != nil {
		c.err = err
		return false, err
	}
	if n == len(*c.buf) {
		c.corked = false
		c.releaseBufLocked()
		return true, nil
	}
	rest := copy(*c.buf, (*c.buf)[n:])
	*c.buf = (*c.buf)[:rest]
	return false, nil
}

// SetReadHook makes f run before every read from the socket, on the reading goroutine. A
// WebSocket library reads from the socket only when what it buffered is used up, so for a
// reader that handles each message as it comes this is "everything read so far has been
// handled": the sentinel's reader writes out what its routing queued then (one system call
// for all a read brought) rather than one write per envelope or a writer goroutine's wake-up.
func (c *Conn) SetReadHook(f func()) {
	if f == nil {
		c.readHook.Store(nil)
		return
	}
	c.readHook.Store(&f)
}

// Read runs the read hook, then reads.
func (c *Conn) Read(p []byte) (int, error) {
	if h := c.readHook.Load(); h != nil {
		(*h)()
	}
	return c.Conn.Read(p)
}

// Write buffers p while corked, else writes it.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = bufpool.Get()
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= maxBuffered {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Cork holds writes until Uncork.
func (c *Conn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Uncork writes what was held, with deadline d from now (none when d <= 0), and lets later
// writes through again.
func (c *Conn) Uncork(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.buf == nil {
		return c.err
	}
	defer c.releaseBufLocked()
	if len(*c.buf) == 0 {
		return c.err
	}
	if d > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
		defer func() { _ = c.Conn.SetWriteDeadline(time.Time{}) }()
	}
	return c.flushLocked()
}

// releaseBufLocked gives the cork buffer back to the pool (which drops one grown too large).
func (c *Conn) releaseBufLocked() {
	bufpool.Put(c.buf)
	c.buf = nil
}

func (c *Conn) flushLocked() error {
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	if err != nil {
		c.err = err
	}
	return err
}

// Listener wraps every accepted connection.
type Listener struct{ net.Listener }

// Accept returns the next connection, wrapped.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

type ctxKey struct{}

// ConnContext is an http.Server.ConnContext that makes the wrapped connection of a request
// available to its handler through FromContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, ctxKey{}, cc)
	}
	return ctx
}

// FromContext returns the request's wrapped connection, or nil.
func FromContext(ctx context.Context) *Conn {
	cc, _ := ctx.Value(ctxKey{}).(*Conn)
	return cc
}

// Dialer returns a DialContext function that wraps what it dials, and reports each wrapped
// connection to onConn (so the caller can cork it later).
func Dialer(d *net.Dialer, onConn func(*Conn)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc := Wrap(c)
		if onConn != nil {
			onConn(cc)
		}
		return cc, nil
	}
}
