package wsengine

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/internal/corkconn"
)

// Credit flow control (fame-protocol §5.5), as the reference connector does it: a window of
// CreditWindow envelopes per flow, refilled once the receiver has consumed CreditThreshold.
const (
	CreditWindow    = 32
	CreditThreshold = 24
)

// MaxBatch and MaxBatchBytes bound one corked flush of a writer goroutine.
const (
	MaxBatch      = 128
	MaxBatchBytes = 1 << 20
)

// MaxDirect is the largest message a sender writes directly: the largest envelope (256 KiB)
// with its frame header. The cork holds twice that before it flushes on its own (a flush that
// would block), so encoding one message into an idle cork never does.
const MaxDirect = 256<<10 + 16

// BurstGap is how soon after a direct write the next envelope on the same connection is
// queued instead: envelopes that close together are a burst (a reader routing what one read
// brought, many callers at once), and the writer goroutine sends a burst in one system call
// where direct writes would make one each. Sequential calls are hundreds of microseconds
// apart and keep writing directly. Measured with 50 callers through the sentinel: without
// the gap its write calls per call went from 0.45 to 2.9.
const BurstGap = 50 * time.Microsecond

// MaxReaderFlush bounds what a reader's flush (the sentinel's deferred writes, written
// before its next read) takes in one go, so that what it encodes into the cork, this plus one
// largest message, stays below the cork's own flush bound and the write never blocks.
const MaxReaderFlush = 192 << 10

// clockBase makes Now a small monotonic number.
var clockBase = time.Now()

// Now is a monotonic clock in nanoseconds for Burst.
func Now() int64 { return int64(time.Since(clockBase)) }

// Burst reports whether a direct write at now comes within BurstGap of the last one (last,
// from Now; 0 for none): the caller should queue.
func Burst(now, last int64) bool { return last != 0 && now-last < int64(BurstGap) }

// CanDirect reports whether a message of size bytes may be written with Direct on cork at
// all: the cork can make a non-blocking write and the message fits. It takes no lock; Direct
// itself finds out whether the connection is free now.
func CanDirect(cork *corkconn.Conn, size int) bool {
	return cork != nil && size <= MaxDirect && cork.CanTry()
}

// Outcome is what Direct did.
type Outcome uint8

const (
	// Busy: nothing was written, the connection is in use (a write in progress, or the rest
	// of an earlier one still corked). The caller queues the message instead.
	Busy Outcome = iota
	// Written: all of the message is on the socket.
	Written
	// Partial: the socket took less than all of it. The rest stays corked, and the caller
	// must have a writer goroutine finish it (Uncork, under its deadline) before anything
	// else is written.
	Partial
)

// Direct writes msg as one binary WebSocket message on ws, whose socket is cork, without
// waiting for anything: it corks the connection only if it is free (TryCork), encodes the
// message into the cork, and makes one non-blocking write. The caller must own the
// connection's data writing (no writer goroutine in a batch) and check CanDirect first. An
// error means the connection is broken; the rest, if any, is left corked as for Partial.
func Direct(ws *websocket.Conn, cork *corkconn.Conn, msg []byte) (Outcome, error) {
	if !cork.TryCork() {
		return Busy, nil
	}
	return WriteCorked(ws, cork, msg)
}

// WriteCorked is Direct for a caller that corked the connection itself (TryCork) before
// preparing msg, because preparing it (stamping a seqId) commits it to being written.
func WriteCorked(ws *websocket.Conn, cork *corkconn.Conn, msg []byte) (Outcome, error) {
	// No context: corked, the library's write only fills the cork buffer (msg is at most
	// MaxDirect, below the cork's bound), so it cannot block on the peer. Control frames
	// other goroutines write meanwhile are corked behind it.
	if err := ws.Write(context.Background(), websocket.MessageBinary, msg); err != nil {
		return Partial, fmt.Errorf("direct write: %w", err)
	}
	done, err := cork.TryUncork()
	if err != nil {
		return Partial, fmt.Errorf("direct write: %w", err)
	}
	if !done {
		return Partial, nil
	}
	return Written, nil
}

// Release ends a cork taken with TryCork when the caller wrote nothing after all. Control
// frames corked meanwhile are flushed without waiting; Partial means some are left for a
// writer goroutine to finish, as after Direct.
func Release(cork *corkconn.Conn) (Outcome, error) {
	done, err := cork.TryUncork()
	if err != nil || !done {
		return Partial, err
	}
	return Written, nil
}
