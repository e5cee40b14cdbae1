package connengine

import (
	"github.com/fame-go/fame/internal/bufpool"

	"sync"
	"sync/atomic"
	"time"
)

// Queue is a connection's outbound queue of encoded envelopes, bounded in envelopes and in
// bytes, with a byte bound shared by every queue of the process. Its ring grows as it fills
// and is released when a burst has drained, so an idle or unauthenticated connection holds no
// queue memory. Its writer goroutine exists only while the connection is busy: the push that
// finds no writer starts one (spawn); a writer that drained the queue lingers for
// WriterLinger, so that steady traffic does not start a goroutine per envelope, then exits.
//
// A full queue refuses the envelope and says why; the caller decides (the sentinel nacks the
// *sender* OVERLOADED, so the destination stays connected and only the sender that filled it
// is slowed). One sender (Src: any comparable value, a pointer as a rule; nil for the connection's own envelopes, which are
// exempt) may hold at most half of the queue (bytes and envelopes), so that a flood to a busy
// peer leaves room for everyone else's envelopes to it.
type Queue struct {
	mu    sync.Mutex
	ring  []Item
	head  int
	n     int   // envelopes waiting (not yet taken by the writer)
	bytes int64 // bytes waiting or being written
	// What each sender holds; senders holding nothing are absent. The first two senders are
	// kept in few, the rest in perSrc: a queue mostly holds envelopes of one or two senders at
	// a time, which then cost no map operation.
	few    [2]srcSlot
	perSrc map[any]srcUse
	closed bool // the connection is gone: refuse, hold nothing
	direct bool // a sender is writing directly (push claimed the socket): the writer goroutine
	// neither starts nor takes until EndDirect
	rest bool // a direct write left bytes in the cork: the writer must flush them first
	// lastPush (unix nanos) is when the last envelope came; directGap is the quiet spell
	// before it that makes a sender write directly (see push).
	lastPush  int64
	directGap time.Duration
	writer    writerState
	wake      chan struct{} // the writer's, while it has one: a push ends its lingering
	spawn     func()        // starts a writer goroutine (running run); nil until the connection may write (setWriter)
	global    *atomic.Int64 // bytes queued on every connection sharing the bound
	max       Limits
}

// writerState is the life of a queue's writer goroutine. Only push and EndDirect start a
// writer (none -> running); only the writer itself ends (parked -> none, at the end of its
// linger), so there is never more than one. Apart from it, one sender at a time may write
// directly (Queue.direct) while the goroutine is absent or parked, never while it runs.
type writerState uint8

const (
	writerNone    writerState = iota // no writer goroutine
	writerRunning                    // a writer is writing, or starting, or about to look again
	writerParked                     // the writer drained the queue and lingers on wake
)

// Limits bound a Queue: envelopes and bytes of this queue, bytes of every queue sharing its
// global counter.
type Limits struct {
	Count       int
	Bytes       int64
	GlobalBytes int64
}

// Item is one queued envelope: its encoded bytes (from internal/bufpool, returned there once
// written) and its sender (nil for the connection's own).
type Item struct {
	B   *[]byte
	Src any
}

type srcUse struct {
	bytes int64
	n     int
}

type srcSlot struct {
	src any
	use srcUse
}

// useOf is what src holds. Call with mu held.
func (q *Queue) useOf(src any) srcUse {
	for i := range q.few {
		if q.few[i].src == src {
			return q.few[i].use
		}
	}
	if q.perSrc == nil {
		return srcUse{}
	}
	return q.perSrc[src]
}

// setUse records what src holds (nothing: it is forgotten). A sender lives in one place,
// a slot of few or perSrc, until it holds nothing. Call with mu held.
func (q *Queue) setUse(src any, u srcUse) {
	for i := range q.few {
		if q.few[i].src == src {
			if u.n <= 0 {
				q.few[i] = srcSlot{}
			} else {
				q.few[i].use = u
			}
			return
		}
	}
	if u.n <= 0 {
		delete(q.perSrc, src)
		return
	}
	if _, inMap := q.perSrc[src]; !inMap {
		for i := range q.few {
			if q.few[i].src == nil {
				q.few[i] = srcSlot{src, u}
				return
			}
		}
	}
	if q.perSrc == nil {
		q.perSrc = map[any]srcUse{}
	}
	q.perSrc[src] = u
}

// What Push and Send report (the sentinel uses the refusals as fame_limit_refusals_total labels).
const (
	OK            = ""
	Closed        = "closed"           // the connection is gone
	RefusedQueue  = "send_queue"       // the queue is full (envelopes or bytes)
	RefusedShare  = "send_queue_share" // the sender already holds half of the queue
	RefusedGlobal = "global_queue"     // all queues together hold GlobalBytes
)

// minRing is the first size of a ring; it doubles from there up to the envelope bound. Rings of
// minRing..keepRing slots (256 B to 4 KB) come from pools and go back to them when the writer
// finds the queue drained, so that an idle connection holds no ring and steady traffic does not
// allocate one burst after burst; a bigger ring is freed when its burst is over.
const (
	minRing  = 16
	keepRing = 256
)

// ringPools[i] holds rings of minRing<<i slots, as array pointers (putting one allocates nothing).
var ringPools [5]sync.Pool

func getRing(size int) []Item {
	var r any
	switch size {
	case 16:
		if r = ringPools[0].Get(); r != nil {
			return r.(*[16]Item)[:]
		}
	case 32:
		if r = ringPools[1].Get(); r != nil {
			return r.(*[32]Item)[:]
		}
	case 64:
		if r = ringPools[2].Get(); r != nil {
			return r.(*[64]Item)[:]
		}
	case 128:
		if r = ringPools[3].Get(); r != nil {
			return r.(*[128]Item)[:]
		}
	case 256:
		if r = ringPools[4].Get(); r != nil {
			return r.(*[256]Item)[:]
		}
	}
	return make([]Item, size)
}

// putRing gives back an empty ring (every slot zeroed by take) of a pooled size.
func putRing(r []Item) {
	switch len(r) {
	case 16:
		ringPools[0].Put((*[16]Item)(r))
	case 32:
		ringPools[1].Put((*[32]Item)(r))
	case 64:
		ringPools[2].Put((*[64]Item)(r))
	case 128:
		ringPools[3].Put((*[128]Item)(r))
	case 256:
		ringPools[4].Put((*[256]Item)(r))
	}
}

// NewQueue returns an empty queue bounded by max, counting its bytes in global too (shared by
// the queues of a process; nil: a counter of its own).
func NewQueue(global *atomic.Int64, max Limits) *Queue {
	if global == nil {
		global = new(atomic.Int64)
	}
	return &Queue{global: global, max: max}
}

// SetWriter enables writing: from now on a push to an idle queue calls spawn, which must start
// a goroutine that takes and writes until take returns nothing. If envelopes are waiting
// already, spawn is called now.
func (q *Queue) SetWriter(spawn func()) {
	q.mu.Lock()
	q.spawn = spawn
	start := q.n > 0 && q.writer == writerNone && !q.direct && !q.closed
	if start {
		q.writer = writerRunning
	}
	q.mu.Unlock()
	if start {
		spawn()
	}
}

// Push queues b (from src, nil for the connection's own envelopes) or says why it cannot: the
// queue is closed, full, src already holds its share, or the global bound is reached. On
// refusal b is not taken: the caller still owns it.
func (q *Queue) Push(b *[]byte, src any) string {
	why, _ := q.push(b, src, false)
	return why
}

// push is Push that, with direct, takes nothing when the queue is empty and no writer runs:
// it claims the writer's place for the caller instead (claimed true), who then writes b
// itself and must call EndDirect. The same bounds apply as to a queued envelope.
func (q *Queue) push(b *[]byte, src any, direct bool) (why string, claimed bool) {
	size := int64(len(*b))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return Closed, false
	}
	if q.n >= q.max.Count || q.bytes+size > q.max.Bytes {
		q.mu.Unlock()
		return RefusedQueue, false
	}
	var use srcUse
	if src != nil {
		use = q.useOf(src)
		if 2*(use.bytes+size) > q.max.Bytes || 2*(use.n+1) > q.max.Count {
			q.mu.Unlock()
			return RefusedShare, false
		}
	}
	if direct && q.directGap > 0 {
		// Under steady traffic the writer's corked batches beat a write(2) per envelope: a
		// sender writes directly only after a quiet spell (a call at a time), when its
		// write saves the writer's wake-up and costs no batching.
		now := time.Now().UnixNano()
		direct = now-q.lastPush >= int64(q.directGap)
		q.lastPush = now
	}
	if direct && q.n == 0 && !q.direct && (q.writer == writerNone || q.directGap == 0 && q.writer == writerParked) && q.spawn != nil {
		// Written at once, the envelope is never held: only the global bound is checked.
		if q.global.Load()+size > q.max.GlobalBytes {
			q.mu.Unlock()
			return RefusedGlobal, false
		}
		q.direct = true
		q.mu.Unlock()
		return OK, true
	}
	if q.global.Add(size) > q.max.GlobalBytes {
		q.global.Add(-size)
		q.mu.Unlock()
		return RefusedGlobal, false
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)%len(q.ring)] = Item{b, src}
	q.n++
	q.bytes += size
	if src != nil {
		q.setUse(src, srcUse{use.bytes + size, use.n + 1})
	}
	if q.direct {
		q.mu.Unlock() // EndDirect hands over to the writer
		return OK, false
	}
	q.startLocked()
	return OK, false
}

// startLocked makes the writer goroutine run: it starts one, or wakes the parked one. It
// unlocks mu.
func (q *Queue) startLocked() {
	var start bool
	var wake chan struct{}
	switch q.writer {
	case writerNone:
		if start = q.spawn != nil; start {
			q.writer = writerRunning
		}
	case writerParked:
		q.writer, wake = writerRunning, q.wake
	}
	q.mu.Unlock()
	if start {
		q.spawn()
	} else if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// EndDirect gives the writer's place back after a direct write (push claimed it). rest says
// the write left bytes that still have to be flushed. A writer goroutine is started when there
// is anything left to do (rest, or envelopes queued meanwhile), else the connection is idle
// again with no goroutine.
func (q *Queue) EndDirect(rest bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return // direct stays set: nothing writes on a closed connection again
	}
	q.direct = false
	q.rest = rest
	if !rest && q.n == 0 {
		q.mu.Unlock()
		return
	}
	q.startLocked()
}

func (q *Queue) grow() {
	size := 2 * len(q.ring)
	if size < minRing {
		size = minRing
	}
	if size > q.max.Count {
		size = q.max.Count
	}
	ring := getRing(size)
	for i := 0; i < q.n; i++ {
		j := (q.head + i) % len(q.ring)
		ring[i] = q.ring[j]
		q.ring[j] = Item{}
	}
	if q.ring != nil {
		putRing(q.ring)
	}
	q.ring, q.head = ring, 0
}

// Run is the writer goroutine's loop (spawn starts it): it writes batches with write until the
// queue stays empty for WriterLinger, or write fails, or done closes. A failed write leaves the
// writer state running, so that no writer starts again: the connection is closing. The linger
// costs a clock read per drained queue: its timer is armed once and only re-armed when it finds
// the writer was busy meanwhile.
func (q *Queue) Run(done <-chan struct{}, write func([]Item) bool) {
	bp := batchPool.Get().(*[]Item)
	batch := (*bp)[:0]
	defer func() {
		*bp = batch[:0]
		batchPool.Put(bp)
	}()
	wake := make(chan struct{}, 1)
	q.mu.Lock()
	q.wake = wake
	q.mu.Unlock()
	linger := time.NewTimer(WriterLinger)
	defer linger.Stop()
	for {
		var parked, rest bool
		batch, parked, rest = q.takeOrPark(batch[:0])
		if len(batch) > 0 || rest {
			ok := write(batch)
			q.Release(batch)
			if !ok {
				return
			}
			continue
		}
		idleSince := time.Now()
		for parked {
			select {
			case <-wake: // push made the writer running again
				parked = false
			case <-linger.C:
				if d := time.Since(idleSince); d < WriterLinger {
					linger.Reset(WriterLinger - d) // armed while the writer was busy
					continue
				}
				if q.retire() {
					return
				}
				linger.Reset(WriterLinger)
				parked = false // a push got in first
			case <-done:
				q.retire()
				return
			}
		}
	}
}

// batchPool holds the writers' batch slices: a writer lives for a busy spell, and its batch
// must not be allocated anew for each.
var batchPool = sync.Pool{New: func() any { b := make([]Item, 0, MaxBatch); return &b }}

// takeOrPark is take for the writer: it takes a batch (rest: and the flush a direct write
// left), or, finding the queue empty or a sender writing directly, marks the writer parked
// (the next push, or EndDirect, wakes it) and reports so.
func (q *Queue) takeOrPark(dst []Item) (batch []Item, parked, rest bool) {
	q.mu.Lock()
	if q.direct || (q.n == 0 && !q.rest) {
		q.writer = writerParked
		q.mu.Unlock()
		return dst, true, false
	}
	rest, q.rest = q.rest, false
	dst = q.takeLocked(dst, MaxBatch, MaxBatchBytes)
	q.mu.Unlock()
	return dst, false, rest
}

// retire ends the writer if it is still parked (no push woke it): the queue gives its ring back
// and the next push starts a new writer. It reports false when a push got in first.
func (q *Queue) retire() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writer != writerParked {
		return false
	}
	q.writer, q.wake = writerNone, nil
	if q.n == 0 && q.ring != nil {
		putRing(q.ring) // idle: hold no ring
		q.ring, q.head = nil, 0
	}
	return true
}

// Take moves up to maxN envelopes, and at most about maxBytes, into dst for the writer. Their
// bytes stay counted until release: they are still in memory until written.
func (q *Queue) Take(dst []Item, maxN int, maxBytes int) []Item {
	q.mu.Lock()
	dst = q.takeLocked(dst, maxN, maxBytes)
	q.mu.Unlock()
	return dst
}

func (q *Queue) takeLocked(dst []Item, maxN int, maxBytes int) []Item {
	size := 0
	for q.n > 0 && len(dst) < maxN && size < maxBytes {
		it := q.ring[q.head]
		q.ring[q.head] = Item{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		size += len(*it.B)
		dst = append(dst, it)
	}
	if q.n == 0 {
		q.head = 0
		if len(q.ring) > keepRing {
			q.ring = nil // a big burst is over: give its ring back
		}
	}
	return dst
}

// Release returns written (or abandoned) envelopes' buffers and uncounts their bytes.
func (q *Queue) Release(items []Item) {
	var total int64
	q.mu.Lock()
	for i, it := range items {
		size := int64(len(*it.B))
		total += size
		if it.Src != nil {
			u := q.useOf(it.Src)
			u.bytes -= size
			u.n--
			q.setUse(it.Src, u)
		}
		bufpool.Put(it.B)
		items[i] = Item{}
	}
	q.bytes -= total
	q.mu.Unlock()
	q.global.Add(-total)
}

// Close refuses everything from now on and frees what is queued.
func (q *Queue) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	rest := make([]Item, 0, q.n)
	for q.n > 0 {
		rest = append(rest, q.ring[q.head])
		q.ring[q.head] = Item{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	if q.ring != nil {
		putRing(q.ring)
		q.ring = nil
	}
	q.mu.Unlock()
	q.Release(rest)
}

// Len is the number of envelopes waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// QueuedBytes is what the queue holds, including the batch being written.
func (q *Queue) QueuedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Limits are the bounds this queue was made with.
func (q *Queue) Limits() Limits { return q.max }
