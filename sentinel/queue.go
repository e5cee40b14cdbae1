package sentinel

import (
	"sync"
	"sync/atomic"
)

// sendQueue is a connection's outbound queue, bounded in envelopes and in bytes, with a
// sentinel-wide byte bound shared by every queue. Its ring grows as it fills and is released
// when a burst has drained, so an idle or unauthenticated connection holds no queue memory.
//
// A full queue refuses the envelope and the caller nacks its *sender* (OVERLOADED): the
// destination stays connected, and only the sender that filled it is slowed. One sender may
// hold at most half of a destination's queue (bytes and envelopes), so that a flood to a busy
// replica leaves room for everyone else's requests to it.
type sendQueue struct {
	mu     sync.Mutex
	ring   []queued
	head   int
	n      int              // envelopes waiting (not yet taken by the writer)
	bytes  int64            // bytes waiting or being written
	perSrc map[*conn]srcUse // what each sender holds; senders holding nothing are absent
	closed bool             // the connection is gone: refuse, hold nothing
	wake   chan struct{}    // capacity 1: tells the writer there is something to take
	global *atomic.Int64    // bytes queued on every connection of the sentinel
	max    queueLimits
}

type queueLimits struct {
	count       int
	bytes       int64
	globalBytes int64
}

type queued struct {
	b   *[]byte
	src *conn // the connection the envelope came from; nil for the sentinel's own envelopes
}

type srcUse struct {
	bytes int64
	n     int
}

// queue refusal reasons (also the fame_limit_refusals_total labels).
const (
	queueOK     = ""
	queueClosed = "closed"
)

// minRing is the first allocation of a ring; it doubles from there up to the envelope bound. A
// drained ring of up to keepRing slots (4 KB) is kept, so that steady traffic does not
// reallocate it burst after burst.
const (
	minRing  = 16
	keepRing = 256
)

func newSendQueue(global *atomic.Int64, max queueLimits) *sendQueue {
	return &sendQueue{wake: make(chan struct{}, 1), global: global, max: max}
}

// push queues b (from src, nil for the sentinel's own envelopes) or says why it cannot: the
// queue is closed, full, src already holds its share, or the sentinel-wide bound is reached.
// On refusal b is not taken: the caller still owns it.
func (q *sendQueue) push(b *[]byte, src *conn) string {
	size := int64(len(*b))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return queueClosed
	}
	if q.n >= q.max.count || q.bytes+size > q.max.bytes {
		q.mu.Unlock()
		return limitQueue
	}
	var use srcUse
	if src != nil {
		use = q.perSrc[src]
		if 2*(use.bytes+size) > q.max.bytes || 2*(use.n+1) > q.max.count {
			q.mu.Unlock()
			return limitQueueFair
		}
	}
	if q.global.Add(size) > q.max.globalBytes {
		q.global.Add(-size)
		q.mu.Unlock()
		return limitGlobalQueue
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)%len(q.ring)] = queued{b, src}
	wasEmpty := q.n == 0
	q.n++
	q.bytes += size
	if src != nil {
		if q.perSrc == nil {
			q.perSrc = map[*conn]srcUse{}
		}
		q.perSrc[src] = srcUse{use.bytes + size, use.n + 1}
	}
	q.mu.Unlock()
	if wasEmpty {
		// The writer sleeps only after it found the queue empty, so a wake-up is needed only
		// when this push ended an empty spell.
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return queueOK
}

func (q *sendQueue) grow() {
	size := 2 * len(q.ring)
	if size < minRing {
		size = minRing
	}
	if size > q.max.count {
		size = q.max.count
	}
	ring := make([]queued, size)
	for i := 0; i < q.n; i++ {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

// take moves up to maxN envelopes, and at most about maxBytes, into dst for the writer. Their
// bytes stay counted until release: they are still in memory until written.
func (q *sendQueue) take(dst []queued, maxN int, maxBytes int) []queued {
	q.mu.Lock()
	size := 0
	for q.n > 0 && len(dst) < maxN && size < maxBytes {
		it := q.ring[q.head]
		q.ring[q.head] = queued{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		size += len(*it.b)
		dst = append(dst, it)
	}
	if q.n == 0 {
		q.head = 0
		if len(q.ring) > keepRing {
			q.ring = nil // a big burst is over: give its ring back
		}
	}
	q.mu.Unlock()
	return dst
}

// release returns written (or abandoned) envelopes' buffers and uncounts their bytes.
func (q *sendQueue) release(items []queued) {
	var total int64
	q.mu.Lock()
	for i, it := range items {
		size := int64(len(*it.b))
		total += size
		if it.src != nil {
			u := q.perSrc[it.src]
			u.bytes -= size
			u.n--
			if u.n <= 0 {
				delete(q.perSrc, it.src)
			} else {
				q.perSrc[it.src] = u
			}
		}
		putBuf(it.b)
		items[i] = queued{}
	}
	q.bytes -= total
	q.mu.Unlock()
	q.global.Add(-total)
}

// close refuses everything from now on and frees what is queued.
func (q *sendQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	rest := make([]queued, 0, q.n)
	for q.n > 0 {
		rest = append(rest, q.ring[q.head])
		q.ring[q.head] = queued{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	q.ring = nil
	q.mu.Unlock()
	q.release(rest)
}

// len is the number of envelopes waiting (for /stats).
func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// queuedBytes is what the queue holds, including the batch being written.
func (q *sendQueue) queuedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
