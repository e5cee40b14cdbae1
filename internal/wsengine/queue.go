package wsengine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/internal/bufpool"
	"github.com/fame-go/fame/internal/corkconn"
)

// Queue is a connection's outbound queue of encoded messages, bounded in envelopes and in
// bytes, with a byte bound shared by every queue of a process (the sentinel's global bound). Its ring grows as it fills and is released
// when a burst has drained, so an idle or unauthenticated connection holds no queue memory.
// Its writer goroutine exists only while the connection is busy: the push that finds no writer
// starts one (spawn); a writer that drained the queue lingers for writerLinger, so that steady
// traffic does not start a goroutine per envelope, then exits. An idle connection costs no
// goroutine but its reader, and holds no ring.
//
// A full queue refuses the envelope (Push never blocks); the sentinel then nacks its *sender*
// (OVERLOADED): the destination stays connected, and only the sender that filled it is slowed;
// the node SDK's senders wait for room (WaitRoom) up to their context. One sender may
// hold at most half of a destination's queue (bytes and envelopes), so that a flood to a busy
// replica leaves room for everyone else's requests to it.
type Queue[S comparable] struct {
	mu    sync.Mutex
	ring  []Item[S]
	head  int
	n     int   // envelopes waiting (not yet taken by the writer)
	bytes int64 // bytes waiting or being written
	// What each sender holds; senders holding nothing are absent. The first two senders are
	// kept in few, the rest in perSrc: a queue mostly holds envelopes of one or two senders at
	// a time, which then cost no map operation.
	few    [2]srcSlot[S]
	perSrc map[S]srcUse
	closed bool // the connection is gone: refuse, hold nothing
	writer writerState
	// direct: a sender is writing to the socket itself (ClaimDirect .. EndDirect); the
	// writer goroutine, if any, must not write meanwhile. needFlush: a direct write left
	// bytes in the cork, which the writer must flush before the queue is idle again.
	direct     bool
	needFlush  bool
	lastDirect int64 // Now() of the last direct write: a burst is queued (BurstGap)
	// owed: envelopes were queued by a sender's reader goroutine without waking the writer
	// (PushDeferred); that reader writes them itself before its next read (FlushOwed).
	owed   bool
	wake   chan struct{} // the writer's, while it has one: a push ends its lingering
	spawn  func()        // starts a writer goroutine (running Run); nil until the connection may write (SetWriter)
	global *atomic.Int64 // bytes queued on every queue bounded together
	max    Limits
	pool   *Pool[S]
	// Progress for the goroutines that wait (WaitRoom, WaitWritten): released counts
	// envelopes written or dropped since the start, pushed those queued; waitc, made by a
	// waiter, is closed by the next release or close.
	pushed, released uint64
	waitc            chan struct{}
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

// Limits bound a queue: Count envelopes and Bytes bytes (waiting or being written), and
// GlobalBytes over every queue sharing the global counter given to NewQueue.
type Limits struct {
	Count       int
	Bytes       int64
	GlobalBytes int64
}

// Item is one queued message: its encoded bytes (a bufpool buffer, given back when written or
// dropped) and its sender, whose share of the queue it counts against (the zero S: no sender,
// no share: the connection's own messages).
type Item[S comparable] struct {
	B   *[]byte
	Src S
}

// Reasons a push is refused (also the sentinel's fame_limit_refusals_total labels).
const (
	Accepted      = ""
	RefusedClosed = "closed"           // the connection is gone
	RefusedFull   = "send_queue"       // the queue holds Limits.Count envelopes or Limits.Bytes bytes
	RefusedShare  = "send_queue_share" // this sender holds half of the queue already
	RefusedGlobal = "global_queue"     // every queue together holds Limits.GlobalBytes
)

type srcUse struct {
	bytes int64
	n     int
}

type srcSlot[S comparable] struct {
	src S
	use srcUse
}

// useOf is what src holds. Call with mu held.
func (q *Queue[S]) useOf(src S) srcUse {
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
func (q *Queue[S]) setUse(src S, u srcUse) {
	for i := range q.few {
		if q.few[i].src == src {
			if u.n <= 0 {
				q.few[i] = srcSlot[S]{}
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
		var zero S
		for i := range q.few {
			if q.few[i].src == zero {
				q.few[i] = srcSlot[S]{src, u}
				return
			}
		}
	}
	if q.perSrc == nil {
		q.perSrc = map[S]srcUse{}
	}
	q.perSrc[src] = u
}

// minRing is the first size of a ring; it doubles from there up to the envelope bound. Rings of
// minRing..keepRing slots (256 B to 4 KB) come from pools and go back to them when the writer
// finds the queue drained, so that an idle connection holds no ring and steady traffic does not
// allocate one burst after burst; a bigger ring is freed when its burst is over.
const (
	minRing  = 16
	keepRing = 256
)

// Pool holds the rings and writer batches of every queue of one sender type: each
// instantiation of Queue needs its own (a ring of Item[S] is a different type per S), so the
// user keeps one Pool per S, in a package variable, and hands it to NewQueue.
type Pool[S comparable] struct {
	rings   [5]sync.Pool // rings[i] holds rings of minRing<<i slots, as array pointers (putting one allocates nothing)
	batches sync.Pool    // writers' batch slices: a writer lives for a busy spell, and its batch must not be allocated anew for each
}

func (p *Pool[S]) getRing(size int) []Item[S] {
	var r any
	switch size {
	case 16:
		if r = p.rings[0].Get(); r != nil {
			return r.(*[16]Item[S])[:]
		}
	case 32:
		if r = p.rings[1].Get(); r != nil {
			return r.(*[32]Item[S])[:]
		}
	case 64:
		if r = p.rings[2].Get(); r != nil {
			return r.(*[64]Item[S])[:]
		}
	case 128:
		if r = p.rings[3].Get(); r != nil {
			return r.(*[128]Item[S])[:]
		}
	case 256:
		if r = p.rings[4].Get(); r != nil {
			return r.(*[256]Item[S])[:]
		}
	}
	return make([]Item[S], size)
}

// putRing gives back an empty ring (every slot zeroed by take) of a pooled size.
func (p *Pool[S]) putRing(r []Item[S]) {
	switch len(r) {
	case 16:
		p.rings[0].Put((*[16]Item[S])(r))
	case 32:
		p.rings[1].Put((*[32]Item[S])(r))
	case 64:
		p.rings[2].Put((*[64]Item[S])(r))
	case 128:
		p.rings[3].Put((*[128]Item[S])(r))
	case 256:
		p.rings[4].Put((*[256]Item[S])(r))
	}
}

func (p *Pool[S]) getBatch() *[]Item[S] {
	if b, ok := p.batches.Get().(*[]Item[S]); ok {
		return b
	}
	b := make([]Item[S], 0, MaxBatch)
	return &b
}

func (p *Pool[S]) putBatch(b *[]Item[S]) {
	clear(*b)
	*b = (*b)[:0]
	p.batches.Put(b)
}

// NewQueue returns an empty queue (it allocates its ring on the first push) whose bytes also
// count in global, shared by every queue bounded together; nil: this queue alone.
func NewQueue[S comparable](pool *Pool[S], global *atomic.Int64, max Limits) *Queue[S] {
	if global == nil {
		global = new(atomic.Int64)
		if max.GlobalBytes <= 0 {
			max.GlobalBytes = max.Bytes
		}
	}
	return &Queue[S]{pool: pool, global: global, max: max}
}

// SetWriter enables writing: from now on a push to an idle queue calls spawn, which must start
// a goroutine that runs Run. If envelopes are waiting already, spawn is called now. spawn is
// always called with the queue's lock held, so it must only start the goroutine (and count it
// in its owner's WaitGroup); after Close it is never called again, which lets the owner wait
// for its writers once it has closed the queue.
func (q *Queue[S]) SetWriter(spawn func()) {
	q.mu.Lock()
	q.spawn = spawn
	if q.n > 0 && q.writer == writerNone && !q.closed {
		q.writer = writerRunning
		spawn()
	}
	q.mu.Unlock()
}

// Push queues b (from src; the zero S for the connection's own messages) or says why it
// cannot (one of the Refused reasons): the queue is closed, full, src already holds its
// share, or the global bound is reached. On refusal b is not taken: the caller still owns it.
func (q *Queue[S]) Push(b *[]byte, src S) string {
	if why := q.add(b, src); why != Accepted {
		return why
	}
	if q.direct {
		q.mu.Unlock() // EndDirect starts or wakes the writer
		return Accepted
	}
	q.kickLocked()
	return Accepted
}

// PushOver queues b past the queue's own bounds (count, bytes, share, global; its bytes are
// still counted): for messages already bounded elsewhere that must not be refused now, such as
// envelopes a credit gate held (bounded by the gate) and a grant released. Only a closed
// queue refuses.
func (q *Queue[S]) PushOver(b *[]byte) string {
	size := int64(len(*b))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return RefusedClosed
	}
	q.global.Add(size)
	if q.n == len(q.ring) {
		q.grow()
	}
	var zero S
	q.ring[(q.head+q.n)%len(q.ring)] = Item[S]{b, zero}
	q.n++
	q.pushed++
	q.bytes += size
	if q.direct {
		q.mu.Unlock() // EndDirect starts or wakes the writer
		return Accepted
	}
	q.kickLocked()
	return Accepted
}

// add queues b as push does and returns with mu held when it did (Accepted); on a refusal mu
// is released and b not taken.
func (q *Queue[S]) add(b *[]byte, src S) string {
	size := int64(len(*b))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return RefusedClosed
	}
	if q.n >= q.max.Count || q.bytes+size > q.max.Bytes {
		q.mu.Unlock()
		return RefusedFull
	}
	var use srcUse
	var zero S
	if src != zero {
		use = q.useOf(src)
		if 2*(use.bytes+size) > q.max.Bytes || 2*(use.n+1) > q.max.Count {
			q.mu.Unlock()
			return RefusedShare
		}
	}
	if q.global.Add(size) > q.max.GlobalBytes {
		q.global.Add(-size)
		q.mu.Unlock()
		return RefusedGlobal
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)%len(q.ring)] = Item[S]{b, src}
	q.n++
	q.pushed++
	q.bytes += size
	if src != zero {
		q.setUse(src, srcUse{use.bytes + size, use.n + 1})
	}
	return Accepted // mu held
}

// PushDeferred is Push for a sender's reader goroutine that will call FlushOwed before it
// reads again: when the writer is idle the envelope is queued without waking it, and owe
// reports that the caller must remember this queue (once per spell: a second sender's reader
// finds it owed already and relies on the first one's flush, microseconds away). A busy
// writer, a direct write in progress or a writer not yet enabled take the envelope as for push.
func (q *Queue[S]) PushDeferred(b *[]byte, src S) (why string, owe bool) {
	if why = q.add(b, src); why != Accepted {
		return why, false
	}
	switch {
	case q.direct || q.needFlush || q.writer == writerRunning || q.spawn == nil:
		// EndDirect, the running writer, or SetWriter takes it from here.
		q.mu.Unlock()
		return Accepted, false
	case q.owed:
		q.mu.Unlock()
		return Accepted, false
	}
	q.owed = true
	q.mu.Unlock()
	return Accepted, true
}

// FlushOwed writes what PushDeferred queued, on the reader goroutine that queued it, when the
// connection's writing is idle: up to MaxBatch envelopes and MaxReaderFlush bytes, which write
// encodes into cork (taken with TryCork here) and flushes with one non-blocking write
// (WriteCorked for many messages). The rest, bytes the socket did not take and a failure go to
// the writer goroutine (EndDirect), which finishes under its deadline; so does everything when
// the writer is busy or the socket is held by another write.
func (q *Queue[S]) FlushOwed(cork *corkconn.Conn, write func([]Item[S]) (Outcome, error)) {
	q.mu.Lock()
	q.owed = false
	if q.closed || q.n == 0 || q.direct || q.needFlush || q.writer == writerRunning || q.spawn == nil {
		q.mu.Unlock() // nothing owed any more, or someone else writes it
		return
	}
	q.direct = true
	q.mu.Unlock()
	if !cork.TryCork() {
		q.EndDirect(false) // the socket is busy: the writer takes the queue
		return
	}
	bp := q.pool.getBatch()
	q.mu.Lock()
	batch := q.takeLocked((*bp)[:0], MaxBatch, MaxReaderFlush)
	q.mu.Unlock()
	out, err := write(batch)
	q.Release(batch)
	*bp = batch
	q.pool.putBatch(bp)
	q.EndDirect(out != Written || err != nil)
}

// kickLocked makes the writer run: it starts one or wakes a parked one. Call with mu held; it
// unlocks mu.
func (q *Queue[S]) kickLocked() {
	var wake chan struct{}
	switch q.writer {
	case writerNone:
		if q.spawn != nil {
			q.writer = writerRunning
			q.spawn() // under mu: see SetWriter
		}
	case writerParked:
		q.writer, wake = writerRunning, q.wake
	}
	q.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// ClaimDirect gives the caller the socket for one direct write (Direct) when the
// connection's writing is idle: writing is enabled (SetWriter), nothing is queued, no batch
// is being written, no other direct write is in progress and none left bytes to flush; and
// the last direct write was not within BurstGap (a burst goes to the writer). The
// caller must call EndDirect. A parked writer may stay parked meanwhile: takeOrPark keeps it
// from writing until EndDirect.
func (q *Queue[S]) ClaimDirect() bool {
	q.mu.Lock()
	ok := !q.closed && q.spawn != nil && q.n == 0 && !q.direct && !q.needFlush && q.writer != writerRunning
	if ok {
		now := Now()
		if ok = !Burst(now, q.lastDirect); ok {
			q.direct, q.lastDirect = true, now
		}
	}
	q.mu.Unlock()
	return ok
}

// EndDirect ends a direct write. flush says it left bytes in the cork (or failed): the writer
// then runs to finish them under the slow-consumer deadline (or find the error). Envelopes
// pushed meanwhile make it run too.
func (q *Queue[S]) EndDirect(flush bool) {
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

func (q *Queue[S]) grow() {
	size := 2 * len(q.ring)
	if size < minRing {
		size = minRing
	}
	if size > q.max.Count && q.max.Count > q.n {
		size = q.max.Count // PushOver may go past the bound: then the ring grows past it too
	}
	ring := q.pool.getRing(size)
	for i := 0; i < q.n; i++ {
		j := (q.head + i) % len(q.ring)
		ring[i] = q.ring[j]
		q.ring[j] = Item[S]{}
	}
	if q.ring != nil {
		q.pool.putRing(q.ring)
	}
	q.ring, q.head = ring, 0
}

// Run is the writer goroutine's loop (spawn starts it): it writes batches with write until the
// queue stays empty for writerLinger, or write fails, or done closes. A failed write leaves the
// writer state running, so that no writer starts again: the connection is closing. The linger
// costs a clock read per drained queue: its timer is armed once and only re-armed when it finds
// the writer was busy meanwhile.
func (q *Queue[S]) Run(done <-chan struct{}, write func([]Item[S]) bool) {
	bp := q.pool.getBatch()
	batch := (*bp)[:0]
	defer func() {
		*bp = batch[:0]
		q.pool.putBatch(bp)
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

// takeOrPark is take for the writer: it takes a batch, or, finding the queue empty, marks the
// writer parked (the next push wakes it) and reports so. While a sender writes directly the
// writer parks too (EndDirect wakes it). An empty batch, not parked, asks the writer to flush
// what a direct write left in the cork; any batch's flush does that as well.
func (q *Queue[S]) takeOrPark(dst []Item[S]) ([]Item[S], bool) {
	q.mu.Lock()
	if q.direct || (q.n == 0 && !q.needFlush) {
		q.writer = writerParked
		q.mu.Unlock()
		return dst, true
	}
	q.needFlush = false
	dst = q.takeLocked(dst, MaxBatch, MaxBatchBytes)
	q.mu.Unlock()
	return dst, false
}

// retire ends the writer if it is still parked (no push woke it): the queue gives its ring back
// and the next push starts a new writer. It reports false when a push got in first.
func (q *Queue[S]) retire() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writer != writerParked {
		return false
	}
	q.writer, q.wake = writerNone, nil
	if q.n == 0 && q.ring != nil {
		q.pool.putRing(q.ring) // idle: hold no ring
		q.ring, q.head = nil, 0
	}
	return true
}

// Take moves up to maxN envelopes, and at most about maxBytes, into dst for the writer. Their
// bytes stay counted until release: they are still in memory until written.
func (q *Queue[S]) Take(dst []Item[S], maxN int, maxBytes int) []Item[S] {
	q.mu.Lock()
	dst = q.takeLocked(dst, maxN, maxBytes)
	q.mu.Unlock()
	return dst
}

func (q *Queue[S]) takeLocked(dst []Item[S], maxN int, maxBytes int) []Item[S] {
	size := 0
	for q.n > 0 && len(dst) < maxN && size < maxBytes {
		it := q.ring[q.head]
		q.ring[q.head] = Item[S]{}
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
func (q *Queue[S]) Release(items []Item[S]) {
	if len(items) == 0 {
		return
	}
	var total int64
	var zero S
	q.mu.Lock()
	q.released += uint64(len(items))
	if q.waitc != nil {
		close(q.waitc)
		q.waitc = nil
	}
	for i, it := range items {
		size := int64(len(*it.B))
		total += size
		if it.Src != zero {
			u := q.useOf(it.Src)
			u.bytes -= size
			u.n--
			q.setUse(it.Src, u)
		}
		bufpool.Put(it.B)
		items[i] = Item[S]{}
	}
	q.bytes -= total
	q.mu.Unlock()
	q.global.Add(-total)
}

// Close refuses everything from now on and frees what is queued; it wakes every waiter.
func (q *Queue[S]) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	if q.waitc != nil {
		close(q.waitc)
		q.waitc = nil
	}
	rest := make([]Item[S], 0, q.n)
	for q.n > 0 {
		rest = append(rest, q.ring[q.head])
		q.ring[q.head] = Item[S]{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	if q.ring != nil {
		q.pool.putRing(q.ring)
		q.ring = nil
	}
	q.mu.Unlock()
	q.Release(rest)
}

// Len is the number of envelopes waiting (for /stats).
func (q *Queue[S]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Bytes is what the queue holds, including the batch being written.
func (q *Queue[S]) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Mark is a point in the queue: what has been pushed so far. WaitWritten(ctx, Mark()) returns
// once all of it has been written.
func (q *Queue[S]) Mark() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushed
}

// WaitWritten waits until everything pushed before mark has been written, or ctx ends (its
// error), or the queue is closed (ErrClosed: what was still queued was dropped).
func (q *Queue[S]) WaitWritten(ctx context.Context, mark uint64) error {
	return q.wait(ctx, func() bool { return q.released >= mark })
}

// WaitRoom waits until the queue has room for one more envelope of size bytes by its own
// bounds (the global bound and a sender's share are not waited for), or ctx ends, or the
// queue is closed. A sender that may block calls it after Push refused RefusedFull, then
// pushes again (another sender may have taken the room meanwhile).
func (q *Queue[S]) WaitRoom(ctx context.Context, size int) error {
	return q.wait(ctx, func() bool { return q.n < q.max.Count && q.bytes+int64(size) <= q.max.Bytes })
}

// ErrClosed is what the waits return once the queue is closed.
var ErrClosed = errors.New("wsengine: queue closed")

// wait blocks until done (called with mu held) holds, ctx ends or the queue closes. Progress
// is signalled by Release and Close closing waitc, which the first waiter makes.
func (q *Queue[S]) wait(ctx context.Context, done func() bool) error {
	for {
		q.mu.Lock()
		switch {
		case q.closed: // first: Close frees what is queued, which would satisfy done
			q.mu.Unlock()
			return ErrClosed
		case done():
			q.mu.Unlock()
			return nil
		}
		if q.waitc == nil {
			q.waitc = make(chan struct{})
		}
		c := q.waitc
		q.mu.Unlock()
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Limits are the queue's bounds, as given to NewQueue.
func (q *Queue[S]) Limits() Limits { return q.max }
