package node

import (
	"sync"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// maxIdleWorkers bounds the handler goroutines kept waiting for the next request.
const maxIdleWorkers = 32

// job is one received request for a handler.
type job struct {
	r   *registration
	env *envelope.Envelope
	ch  *security.Channel
}

// handlerPool runs requests off the reader goroutine, at most max at once (Config.MaxHandlers)
// with up to maxQueue more waiting (Config.HandlerQueue); a request past both is refused, so
// a flood of requests costs a bounded number of goroutines and bounded memory. A request goes
// to a resident worker if one is idle, otherwise to a new goroutine that then stays resident
// while fewer than maxIdleWorkers do. Reusing workers saves a goroutine spawn per request and,
// more, the stack growth every fresh goroutine pays to encode and write its reply. Workers are
// owned by Node.wg and end with the node's context.
type handlerPool struct {
	jobs     chan job      // unbuffered: a send succeeds only into an idle worker
	resident chan struct{} // one token per resident worker

	// mu makes "count a running handler" and "queue a job" one decision with "take the next
	// job or stop counting": a job is queued only while max handlers run, and a handler takes
	// queued work before it stops counting, so nothing waits in the queue with no one to run it.
	mu       sync.Mutex
	active   int
	max      int
	queue    []job // waiting requests, oldest first; nil while none wait, so an idle node holds no queue
	maxQueue int
}

func newHandlerPool(max, queue int) *handlerPool {
	return &handlerPool{jobs: make(chan job), resident: make(chan struct{}, maxIdleWorkers),
		max: max, maxQueue: queue}
}

// runHandler hands j to a handler or queues it, without blocking (reader goroutine); accepted
// runs first (under the pool's lock, so before any handler can answer: the at-least-once
// delivery ack goes out ahead of the reply). False means the node is at its bound and j was
// not taken.
// An accepted job counts in Node.busy until its handler returns.
func (n *Node) runHandler(j job, accepted func()) bool {
	p := n.handlers
	p.mu.Lock()
	if p.active < p.max {
		p.active++
		n.busy.Add(1)
		accepted()
		p.mu.Unlock()
		n.startHandler(j)
		return true
	}
	if len(p.queue) >= p.maxQueue {
		p.mu.Unlock()
		return false
	}
	p.queue = append(p.queue, j)
	n.busy.Add(1)
	accepted()
	p.mu.Unlock()
	return true
}

// next returns queued work for a handler that just finished, or stops counting it.
func (p *handlerPool) next() (job, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		p.active--
		return job{}, false
	}
	j := p.queue[0]
	p.queue[0] = job{}
	p.queue = p.queue[1:]
	if len(p.queue) == 0 {
		p.queue = nil // the burst is over: let its array go
	}
	return j, true
}

// startHandler runs j on an idle resident worker, or a new goroutine.
func (n *Node) startHandler(j job) {
	select {
	case n.handlers.jobs <- j:
		return
	default:
	}
	n.wg.Add(1)
	select {
	case n.handlers.resident <- struct{}{}:
		go n.worker(j, true)
	default:
		go n.worker(j, false)
	}
}

// worker runs j and the queued requests after it; a resident worker then waits for the next
// request handed to it until the node closes, the others end.
func (n *Node) worker(j job, resident bool) {
	defer n.wg.Done()
	if resident {
		defer func() { <-n.handlers.resident }()
	}
	for {
		n.handle(j.r, j.env, j.ch)
		n.busy.Add(-1)
		if next, ok := n.handlers.next(); ok {
			j = next
			continue
		}
		if !resident {
			return
		}
		select {
		case j = <-n.handlers.jobs:
		case <-n.ctx.Done():
			return
		}
	}
}
