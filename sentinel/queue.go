package sentinel

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/internal/wsengine"
)

// sendQueue is a connection's outbound queue, bounded in envelopes and in bytes, with a
// sentinel-wide byte bound shared by every queue. Its ring grows as it fills and is released
// when a burst has drained, so an idle or unauthenticated connection holds no queue memory.
// Its writer goroutine exists only while the connection is busy: the push that finds no writer
// starts one (spawn); a writer that drained the queue lingers for writerLinger, so that steady
// traffic does not start a goroutine per envelope, then exits. An idle connection costs no
// goroutine but its reader, and holds no ring.
//
// A full queue refuses the envelope and the caller nacks its *sender* (OVERLOADED): the
// destination stays connected, and only the sender that filled it is slowed. One sender may
// hold at most half of a destination's queue (bytes and envelopes), so that a flood to a busy
// replica leaves room for everyone else's requests to it.
type sendQueue struct {
	mu    sync.Mutex
	ring  []queued
	head  int
	n     int   // envelopes waiting (not yet taken by the writer)
	bytes int64 // bytes waiting or being written
	// What each sender holds; senders holding nothing are absent. The first two senders are
	// kept in few, the rest in perSrc: a queue mostly holds envelopes of one or two senders at
	// a time, which then cost no map operation.
	few    [2]srcSlot
	perSrc map[*conn]srcUse
	closed bool // the connection is gone: refuse, hold nothing
	writer writerState
	// direct: a sender is writing to the socket itself (claimDirect .. endDirect); the
	// writer goroutine, if any, must not write meanwhile. needFlush: a direct write left
	// bytes in the cork, which the writer must flush before the queue is idle again.
	direct     bool
	needFlush  bool
	lastDirect int64 // wsengine.Now() of the last direct write: a burst is queued (BurstGap)
	// owed: envelopes were queued by a sender's reader goroutine without waking the writer
	// (pushDeferred); that reader writes them itself before its next read (flushOwed).
	owed   bool
	wake   chan struct{} // the writer's, while it has one: a push ends its lingering
	spawn  func()        // starts a writer goroutine (running run); nil until the connection may write (setWriter)
	global *atomic.Int64 // bytes queued on every connection of the sentinel
	max    queueLimits
}

// writerState is the life of a queue's writer goroutine. Only push starts a writer (none ->
// running); only the writer itself ends (parked -> none, at the end of its linger), so there is
// never more than one.
type writerState uint8

const (
	writerNone    writerState = iota // no writer goroutine
	writerRunning                    // a writer is writing, or starting, or about to look again
	writerParked                     // the writer drained the queue and lingers on wake
)

// writerLinger is how long a writer waits for more after draining its queue. A peer in steady
// traffic keeps its writer; an idle node (a heartbeat every 15 s) has one for 1/60 of the time.
const writerLinger = 250 * time.Millisecond

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

type srcSlot struct {
	src *conn
	use srcUse
}

// useOf is what src holds. Call with mu held.
func (q *sendQueue) useOf(src *conn) srcUse {
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
func (q *sendQueue) setUse(src *conn, u srcUse) {
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
		q.perSrc = map[*conn]srcUse{}
	}
	q.perSrc[src] = u
}

// queue refusal reasons (also the fame_limit_refusals_total labels).
const (
	queueOK     = ""
	queueClosed = "closed"
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

func getRing(size int) []queued {
	var r any
	switch size {
	case 16:
		if r = ringPools[0].Get(); r != nil {
			return r.(*[16]queued)[:]
		}
	case 32:
		if r = ringPools[1].Get(); r != nil {
			return r.(*[32]queued)[:]
		}
	case 64:
		if r = ringPools[2].Get(); r != nil {
			return r.(*[64]queued)[:]
		}
	case 128:
		if r = ringPools[3].Get(); r != nil {
			return r.(*[128]queued)[:]
		}
	case 256:
		if r = ringPools[4].Get(); r != nil {
			return r.(*[256]queued)[:]
		}
	}
	return make([]queued, size)
}

// putRing gives back an empty ring (every slot zeroed by take) of a pooled size.
func putRing(r []queued) {
	switch len(r) {
	case 16:
		ringPools[0].Put((*[16]queued)(r))
	case 32:
		ringPools[1].Put((*[32]queued)(r))
	case 64:
		ringPools[2].Put((*[64]queued)(r))
	case 128:
		ringPools[3].Put((*[128]queued)(r))
	case 256:
		ringPools[4].Put((*[256]queued)(r))
	}
}

func newSendQueue(global *atomic.Int64, max queueLimits) *sendQueue {
	return &sendQueue{global: global, max: max}
}

// setWriter enables writing: from now on a push to an idle queue calls spawn, which must start
// a goroutine that takes and writes until take returns nothing. If envelopes are waiting
// already, spawn is called now.
func (q *sendQueue) setWriter(spawn func()) {
	q.mu.Lock()
	q.spawn = spawn
	start := q.n > 0 && q.writer == writerNone && !q.closed
	if start {
		q.writer = writerRunning
	}
	q.mu.Unlock()
	if start {
		spawn()
	}
}

// push queues b (from src, nil for the sentinel's own envelopes) or says why it cannot: the
// queue is closed, full, src already holds its share, or the sentinel-wide bound is reached.
// On refusal b is not taken: the caller still owns it.
func (q *sendQueue) push(b *[]byte, src *conn) string {
	if why := q.add(b, src); why != queueOK {
		return why
	}
	if q.direct {
		q.mu.Unlock() // endDirect starts or wakes the writer
		return queueOK
	}
	q.kickLocked()
	return queueOK
}

// add queues b as push does and returns with mu held when it did (queueOK); on a refusal mu
// is released and b not taken.
func (q *sendQueue) add(b *[]byte, src *conn) string {
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
		use = q.useOf(src)
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
	q.n++
	q.bytes += size
	if src != nil {
		q.setUse(src, srcUse{use.bytes + size, use.n + 1})
	}
	return queueOK // mu held
}

// pushDeferred is push for a sender's reader goroutine that will call flushOwed before it
// reads again: when the writer is idle the envelope is queued without waking it, and owe
// reports that the caller must remember this queue (once per spell: a second sender's reader
// finds it owed already and relies on the first one's flush, microseconds away). A busy
// writer, a direct write in progress or a writer not yet enabled take the envelope as for push.
func (q *sendQueue) pushDeferred(b *[]byte, src *conn) (why string, owe bool) {
	if why = q.add(b, src); why != queueOK {
		return why, false
	}
	switch {
	case q.direct || q.needFlush || q.writer == writerRunning || q.spawn == nil:
		// endDirect, the running writer, or setWriter takes it from here.
		q.mu.Unlock()
		return queueOK, false
	case q.owed:
		q.mu.Unlock()
		return queueOK, false
	}
	q.owed = true
	q.mu.Unlock()
	return queueOK, true
}

// flushOwed writes what pushDeferred queued, on the reader goroutine that queued it, when the
// connection's writing is idle: up to MaxBatch envelopes and wsengine.MaxReaderFlush bytes
// corked into one non-blocking write. The rest, bytes the socket did not take and a failure go
// to the writer goroutine (endDirect), which finishes under the slow-consumer deadline; so does
// everything when the writer is busy or the socket is held by another write.
func (q *sendQueue) flushOwed(c *conn) {
	q.mu.Lock()
	q.owed = false
	if q.closed || q.n == 0 || q.direct || q.needFlush || q.writer == writerRunning || q.spawn == nil {
		q.mu.Unlock() // nothing owed any more, or someone else writes it
		return
	}
	q.direct = true
	q.mu.Unlock()
	if !c.cork.TryCork() {
		q.endDirect(false) // the socket is busy: the writer takes the queue
		return
	}
	bp := batchPool.Get().(*[]queued)
	q.mu.Lock()
	batch := q.takeLocked((*bp)[:0], wsengine.MaxBatch, wsengine.MaxReaderFlush)
	q.mu.Unlock()
	out, err := c.writeCorked(batch)
	q.release(batch)
	clear(batch)
	*bp = batch[:0]
	batchPool.Put(bp)
	q.endDirect(out != wsengine.Written || err != nil)
}

// kickLocked makes the writer run: it starts one or wakes a parked one. Call with mu held; it
// unlocks mu.
func (q *sendQueue) kickLocked() {
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

// claimDirect gives the caller the socket for one direct write (wsengine.Direct) when the
// connection's writing is idle: writing is enabled (setWriter), nothing is queued, no batch
// is being written, no other direct write is in progress and none left bytes to flush; and
// the last direct write was not within wsengine.BurstGap (a burst goes to the writer). The
// caller must call endDirect. A parked writer may stay parked meanwhile: takeOrPark keeps it
// from writing until endDirect.
func (q *sendQueue) claimDirect() bool {
	q.mu.Lock()
	ok := !q.closed && q.spawn != nil && q.n == 0 && !q.direct && !q.needFlush && q.writer != writerRunning
	if ok {
		now := wsengine.Now()
		if ok = !wsengine.Burst(now, q.lastDirect); ok {
			q.direct, q.lastDirect = true, now
		}
	}
	q.mu.Unlock()
	return ok
}

// endDirect ends a direct write. flush says it left bytes in the cork (or failed): the writer
// then runs to finish them under the slow-consumer deadline (or find the error). Envelopes
// pushed meanwhile make it run too.
func (q *sendQueue) endDirect(flush bool) {
	q.mu.Lock()
	q.direct = false
	if flush {
		q.needFlush = true
	}
	if q.closed || (q.n == 0 && !q.needFlush) {
		q.mu.Unlock()
		return
	}
	q.kickLocked()
}

func (q *sendQueue) grow() {
	size := 2 * len(q.ring)
	if size < minRing {
		size = minRing
	}
	if size > q.max.count {
		size = q.max.count
	}
	ring := getRing(size)
	for i := 0; i < q.n; i++ {
		j := (q.head + i) % len(q.ring)
		ring[i] = q.ring[j]
		q.ring[j] = queued{}
	}
	if q.ring != nil {
		putRing(q.ring)
	}
	q.ring, q.head = ring, 0
}

// run is the writer goroutine's loop (spawn starts it): it writes batches with write until the
// queue stays empty for writerLinger, or write fails, or done closes. A failed write leaves the
// writer state running, so that no writer starts again: the connection is closing. The linger
// costs a clock read per drained queue: its timer is armed once and only re-armed when it finds
// the writer was busy meanwhile.
func (q *sendQueue) run(done <-chan struct{}, write func([]queued) bool) {
	bp := batchPool.Get().(*[]queued)
	batch := (*bp)[:0]
	defer func() {
		*bp = batch[:0]
		batchPool.Put(bp)
	}()
	wake := make(chan struct{}, 1)
	q.mu.Lock()
	q.wake = wake
	q.mu.Unlock()
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	for {
		var parked bool
		batch, parked = q.takeOrPark(batch[:0])
		if !parked { // a batch, or (empty) a direct write's rest to flush
			ok := write(batch)
			q.release(batch)
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
				if d := time.Since(idleSince); d < writerLinger {
					linger.Reset(writerLinger - d) // armed while the writer was busy
					continue
				}
				if q.retire() {
					return
				}
				linger.Reset(writerLinger)
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
var batchPool = sync.Pool{New: func() any { b := make([]queued, 0, wsengine.MaxBatch); return &b }}

// takeOrPark is take for the writer: it takes a batch, or, finding the queue empty, marks the
// writer parked (the next push wakes it) and reports so. While a sender writes directly the
// writer parks too (endDirect wakes it). An empty batch, not parked, asks the writer to flush
// what a direct write left in the cork; any batch's flush does that as well.
func (q *sendQueue) takeOrPark(dst []queued) ([]queued, bool) {
	q.mu.Lock()
	if q.direct || (q.n == 0 && !q.needFlush) {
		q.writer = writerParked
		q.mu.Unlock()
		return dst, true
	}
	q.needFlush = false
	dst = q.takeLocked(dst, wsengine.MaxBatch, wsengine.MaxBatchBytes)
	q.mu.Unlock()
	return dst, false
}

// retire ends the writer if it is still parked (no push woke it): the queue gives its ring back
// and the next push starts a new writer. It reports false when a push got in first.
func (q *sendQueue) retire() bool {
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

// take moves up to maxN envelopes, and at most about maxBytes, into dst for the writer. Their
// bytes stay counted until release: they are still in memory until written.
func (q *sendQueue) take(dst []queued, maxN int, maxBytes int) []queued {
	q.mu.Lock()
	dst = q.takeLocked(dst, maxN, maxBytes)
	q.mu.Unlock()
	return dst
}

func (q *sendQueue) takeLocked(dst []queued, maxN int, maxBytes int) []queued {
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
			u := q.useOf(it.src)
			u.bytes -= size
			u.n--
			q.setUse(it.src, u)
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
	if q.ring != nil {
		putRing(q.ring)
		q.ring = nil
	}
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
