// Package bufpool is the module's one pool of scratch byte slices: buffers needed for the
// duration of one call or one write (canonical JSON and signed bytes in package security,
// outbound frames), recycled so the per-envelope paths do not allocate them afresh.
//
// Get returns an empty slice with some capacity; Put takes it back. A buffer grown past
// MaxPooled by one huge message is dropped instead of kept, so the pool never pins large
// memory. A caller must not touch a slice (nor anything aliasing it) after Put.
package bufpool

import "sync"

// InitialCap is the capacity of a new buffer: a typical envelope fits without growing.
const InitialCap = 2048

// MaxPooled is the largest capacity Put keeps: twice the largest envelope (256 KiB), so a read
// buffer or a corked batch of large envelopes is reused too. sync.Pool lets the garbage
// collector free what stays unused, so a burst of large messages is not held for ever.
const MaxPooled = 512 << 10

// Pointers to slices, so that Get and Put move no slice header through an interface
// (which would allocate).
var pool = sync.Pool{New: func() any { b := make([]byte, 0, InitialCap); return &b }}

// Get returns an empty buffer.
func Get() *[]byte { return pool.Get().(*[]byte) }

// Put returns b to the pool (emptied), or drops it when it grew past MaxPooled.
func Put(b *[]byte) {
	if cap(*b) > MaxPooled {
		return
	}
	*b = (*b)[:0]
	pool.Put(b)
}
