package node

import (
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

// handlerPool runs requests off the reader goroutine. A request goes to a resident worker if
// one is idle, otherwise to a new goroutine that then stays resident while fewer than
// maxIdleWorkers do. Reusing workers saves a goroutine spawn per request and, more, the
// stack growth every fresh goroutine pays to encode and write its reply. Handlers still
// never wait for each other: a request finding no idle worker always gets a new goroutine.
// Workers are owned by Node.wg and end with the node's context.
type handlerPool struct {
	jobs     chan job      // unbuffered: a send succeeds only into an idle worker
	resident chan struct{} // one token per resident worker
}

func newHandlerPool() *handlerPool {
	return &handlerPool{jobs: make(chan job), resident: make(chan struct{}, maxIdleWorkers)}
}

// runHandler hands j to a handler without blocking (reader goroutine).
func (n *Node) runHandler(j job) {
	select {
	case n.handlers.jobs <- j:
		return
	default:
	}
	n.wg.Add(1)
	select {
	case n.handlers.resident <- struct{}{}:
		go n.worker(j)
	default:
		go func() {
			defer n.wg.Done()
			n.handle(j.r, j.env, j.ch)
		}()
	}
}

// worker runs j, then the requests handed to it, until the node closes.
func (n *Node) worker(j job) {
	defer n.wg.Done()
	defer func() { <-n.handlers.resident }()
	for {
		n.handle(j.r, j.env, j.ch)
		select {
		case j = <-n.handlers.jobs:
		case <-n.ctx.Done():
			return
		}
	}
}
