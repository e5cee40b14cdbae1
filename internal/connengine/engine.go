package connengine

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/internal/bufpool"
	"github.com/fame-go/fame/internal/corkconn"
)

// Config is what an Engine needs from its owner, fixed at construction.
type Config struct {
	// WS writes one message (a *websocket.Conn; the interface lets tests frame by hand).
	WS MessageWriter
	// Cork is the socket under WS (nil if unknown: no direct writes, no batching; every
	// envelope is written by the writer goroutine, each under its own timeout).
	Cork *corkconn.Conn
	// Limits bound the queue; Global counts the bytes of every queue sharing Limits.GlobalBytes
	// (nil: this queue's own).
	Limits Limits
	Global *atomic.Int64
	// SlowConsumer is the deadline of one batch write: a peer that takes nothing for that long
	// is cut (WriteFailed gets an error that IsSlowConsumer). 0 means no deadline.
	SlowConsumer time.Duration
	// Go runs f on a goroutine the owner accounts for (its WaitGroup); the writer runs on it.
	Go func(f func())
	// Done is closed when the connection ends: a lingering writer exits at once.
	Done <-chan struct{}
	// WriteFailed is told once per failed write, from the writing goroutine; the owner closes
	// the connection (and with it Close of the engine).
	WriteFailed func(err error)
	// DirectGap: a sender writes directly only when the previous envelope came at least this
	// long ago (DefaultDirectGap; 0: whenever the connection is idle). Under load the queue's
	// writer batches instead, one system call for many envelopes.
	DirectGap time.Duration
	// Sent, if set, is called after each envelope is handed to the socket (counters, display).
	Sent func(b []byte)
}

// MessageWriter writes one WebSocket message; *websocket.Conn is one.
type MessageWriter interface {
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
}

// Engine is the sending half of one connection: a Queue and its socket, written by whichever
// goroutine finds it idle (a sender, directly) or by the queue's on-demand writer.
type Engine struct {
	q   *Queue
	cfg Config
}

// New returns an engine that queues but does not write until Start.
func New(cfg Config) *Engine {
	e := &Engine{cfg: cfg, q: NewQueue(cfg.Global, cfg.Limits)}
	e.q.directGap = cfg.DirectGap
	return e
}

// Queue is the engine's send queue (for its bounds and figures).
func (e *Engine) Queue() *Queue { return e.q }

// Start enables writing: what is queued already is written now, by a writer goroutine.
func (e *Engine) Start() {
	e.q.SetWriter(func() { e.cfg.Go(e.writer) })
}

// Send hands an encoded envelope (from internal/bufpool; the engine returns it there) from
// src (nil for the connection's own) to the connection. When nothing else is being written
// it is written at once on the caller's goroutine, which never waits for the peer (what the
// socket does not take now is left to the writer); otherwise it is queued. It reports OK, or
// Closed, or the bound that refused it; on refusal b has been returned to the pool. A write
// that fails here is reported to WriteFailed like the writer's, and Send still says OK: the
// connection is ending, as if the envelope had been queued just before.
func (e *Engine) Send(b *[]byte, src any) string {
	why, claimed := e.q.push(b, src, e.direct())
	if why != OK {
		bufpool.Put(b)
		return why
	}
	if claimed {
		e.writeDirect(b)
	}
	return OK
}

// direct reports whether a sender may try to write now: the socket must be one the engine
// can write without waiting (corked, descriptor access) and no write that may wait for the
// peer (a control frame the WebSocket library sends, a flush) may be in progress, since the
// sender would queue behind it.
func (e *Engine) direct() bool {
	return e.cfg.Cork != nil && e.cfg.Cork.Direct() && !e.cfg.Cork.Busy()
}

// writeDirect writes b on the caller's goroutine, which push made the connection's only
// writer. The frame goes into the cork buffer (no system call yet), then TryUncork sends what
// the socket takes without waiting; a rest is the writer goroutine's.
func (e *Engine) writeDirect(b *[]byte) {
	cork := e.cfg.Cork
	cork.Cork()
	err := e.cfg.WS.Write(context.Background(), websocket.MessageBinary, *b)
	if err == nil && e.cfg.Sent != nil {
		e.cfg.Sent(*b)
	}
	bufpool.Put(b)
	var done bool
	if err == nil {
		done, err = cork.TryUncork()
	}
	if err != nil {
		e.cfg.WriteFailed(err)
		e.q.Close() // what is queued is freed; direct stays claimed: nothing writes again
		return
	}
	e.q.EndDirect(!done)
}

// Close refuses everything from now on and frees what is queued.
func (e *Engine) Close() { e.q.Close() }

// writer is the writer goroutine (Go runs it): it writes batches until the queue has stayed
// empty for WriterLinger, a write fails or Done closes.
func (e *Engine) writer() {
	e.q.Run(e.cfg.Done, e.writeBatchOrClose)
}

// writeBatchOrClose writes a batch; when that fails, what is still queued is freed.
func (e *Engine) writeBatchOrClose(batch []Item) bool {
	if e.writeBatch(batch) {
		return true
	}
	e.q.Close()
	return false
}

// writeBatch writes a batch (and whatever a direct write left in the cork) in one system call:
// the socket is corked while the envelopes are written and flushed once at the end. The
// deadline covers the whole batch, including flushes the cork makes on its own when its
// buffer fills.
func (e *Engine) writeBatch(batch []Item) bool {
	timeout := e.cfg.SlowConsumer
	cork := e.cfg.Cork
	if cork != nil {
		if timeout > 0 {
			_ = cork.SetWriteDeadline(time.Now().Add(timeout))
		}
		cork.Cork()
	}
	ok := true
	for _, it := range batch {
		if ok = e.writeOne(*it.B, timeout); !ok {
			break
		}
	}
	if cork != nil {
		err := cork.Uncork(timeout)
		if timeout > 0 {
			_ = cork.SetWriteDeadline(time.Time{})
		}
		if err != nil && ok {
			e.cfg.WriteFailed(err)
			return false
		}
	}
	return ok
}

func (e *Engine) writeOne(b []byte, timeout time.Duration) bool {
	var err error
	if e.cfg.Cork != nil || timeout <= 0 {
		// Corked, the write only fills the batch buffer; the batch's deadline applies to the
		// real write. A per-message timeout context would cost a timer and a
		// context.AfterFunc for every envelope.
		err = e.cfg.WS.Write(context.Background(), websocket.MessageBinary, b)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = e.cfg.WS.Write(ctx, websocket.MessageBinary, b)
		cancel()
	}
	if err != nil {
		e.cfg.WriteFailed(err)
		return false
	}
	if e.cfg.Sent != nil {
		e.cfg.Sent(b)
	}
	return true
}

// IsSlowConsumer reports whether a write error means the peer took nothing within the
// slow-consumer deadline (rather than a broken socket).
func IsSlowConsumer(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// SlowConsumer is the deadline this connection's batch writes run under (for the log line of
// a cut).
func (e *Engine) SlowConsumer() time.Duration { return e.cfg.SlowConsumer }
