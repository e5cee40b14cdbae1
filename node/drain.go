package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fame-go/fame/envelope"
)

// Replica drain (the SDK's side; the sentinel's is sentinel/replicadrain.go, the wire shape
// envelope/drain.go).
//
// Drain asks the sentinel to drain this node with a NodeHeartbeat carrying
// {"drain":{"request":true}} and its own systemId, then keeps serving: the sentinel sends no
// new sessions, moves each pinned session when it is idle (the clients re-open their
// channels on another replica) and reports the state in the payload of its NodeHeartbeatAcks.
// Drain re-sends the drain heartbeat every drainPoll (on whatever link is current, so a
// reconnect does not lose the request) and returns nil once the sentinel reports "drained":
// nothing is pinned here and nothing is in flight, so the program may Close and exit. At the
// end of ctx it returns ctx's error; the caller closes anyway (the calls still in flight are
// nacked ROUTE_CONNECTOR_CLOSED by the sentinel, which at-least-once callers re-send
// elsewhere).
//
// A sentinel that knows nothing of replica drains (the reference one) acknowledges the drain
// heartbeat without a payload: after drainUnsupportedAcks such acks Drain waits until no
// handler of this node runs and returns ErrDrainUnsupported.
//
// An operator can also drain a replica at the sentinel (POST /admin/replicas/{id}/drain):
// the node then reads the drain status in its heartbeat acks, and DrainRequested is closed,
// so that its program can call Drain and exit (math-agent does).

// ErrDrainUnsupported: the sentinel acknowledged the drain heartbeats without a drain status
// (it does not implement replica drains); Drain returned once this node's handlers were idle.
var ErrDrainUnsupported = errors.New("node: the sentinel does not support replica drain")

const (
	// drainPoll is how often Drain asks the sentinel for the drain's state.
	drainPoll = 200 * time.Millisecond
	// drainUnsupportedAcks is how many acks without a drain status mean "not supported".
	drainUnsupportedAcks = 3
)

// drainState is what the node learned of its drain from the sentinel's heartbeat acks.
type drainState struct {
	mu        sync.Mutex
	acks      uint64 // heartbeat acks seen
	last      *envelope.DrainStatus
	lastSeq   uint64 // acks value when last was set
	changed   chan struct{}
	requested chan struct{} // closed when an ack first reports a drain (DrainRequested)
	reqOnce   sync.Once
}

func (d *drainState) init() {
	d.changed = make(chan struct{}, 1)
	d.requested = make(chan struct{})
}

// heartbeatAck records the drain payload of one accepted NodeHeartbeatAck (reader goroutine;
// never blocks).
func (n *Node) heartbeatAck(payload json.RawMessage) {
	d := &n.drain
	var st *envelope.DrainStatus
	if len(payload) > 0 {
		var p envelope.DrainPayload
		if err := json.Unmarshal(payload, &p); err == nil && p.Drain != nil && p.Drain.State != "" {
			st = p.Drain
		}
	}
	d.mu.Lock()
	d.acks++
	if st != nil {
		d.last, d.lastSeq = st, d.acks
	}
	d.mu.Unlock()
	if st != nil {
		d.reqOnce.Do(func() {
			n.log.Info("the sentinel is draining this node", "by", st.By, "state", st.State,
				"pinned_sessions", st.PinnedSessions)
			close(d.requested)
		})
	}
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// DrainRequested is closed once the sentinel reports that it drains this node (asked by the
// node's own Drain or by an operator at the sentinel's admin endpoint).
func (n *Node) DrainRequested() <-chan struct{} { return n.drain.requested }

// Drain asks the sentinel to move this node's sessions to other replicas and waits until it
// reports the node drained (nil), ctx ends (ctx's error) or the node is closed (ErrClosed).
// A ctx without a deadline gets Config.DrainTimeout. The node keeps serving meanwhile. See
// the top of drain.go.
func (n *Node) Drain(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok && n.cfg.DrainTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.DrainTimeout)
		defer cancel()
	}
	d := &n.drain
	start := time.Now()
	n.log.Info("drain: asking the sentinel to move this node's sessions")
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	unsupported := 0
	for {
		d.mu.Lock()
		before := d.acks
		d.mu.Unlock()
		if err := n.sendDrainHeartbeat(ctx); err != nil {
			return err
		}
		// Wait for the ack of this heartbeat (or the next poll: a lost one is re-sent).
		acked := false
		for !acked {
			select {
			case <-ctx.Done():
				return fmt.Errorf("node: drain: %w", ctxErr(ctx))
			case <-n.ctx.Done():
				return ErrClosed
			case <-t.C:
				acked = true // re-send
				continue
			case <-d.changed:
			}
			d.mu.Lock()
			acked = d.acks > before
			st, fresh := d.last, d.lastSeq > before
			d.mu.Unlock()
			if !acked {
				continue
			}
			if !fresh {
				unsupported++
				if unsupported >= drainUnsupportedAcks {
					n.log.Warn("drain: the sentinel acknowledges heartbeats without a drain status (not supported); waiting for the handlers in flight")
					return n.waitHandlersIdle(ctx)
				}
				break
			}
			if st.State == envelope.DrainStateDrained {
				n.log.Info("drain: the sentinel reports this node drained", "result", st.Result,
					"sessions_moved", st.Moved, "took", time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: drain: %w", ctxErr(ctx))
		case <-n.ctx.Done():
			return ErrClosed
		case <-t.C:
		}
	}
}

// sendDrainHeartbeat sends one drain heartbeat on the current link.
func (n *Node) sendDrainHeartbeat(ctx context.Context) error {
	l, err := n.current(ctx)
	if err != nil {
		return fmt.Errorf("node: drain: %w", err)
	}
	payload, err := json.Marshal(envelope.DrainPayload{Drain: &envelope.DrainStatus{Request: true}})
	if err != nil {
		return err
	}
	env, err := envelope.New(&envelope.NodeHeartbeat{SystemID: n.cfg.SystemID, Payload: payload})
	if err != nil {
		return err
	}
	env.SID, env.TraceID, env.CorrID = l.sid, l.traceID, envelope.NewID()
	if err := n.sendOn(ctx, l, env); err != nil && !errors.Is(err, errLinkLost) {
		return fmt.Errorf("node: drain heartbeat: %w", err)
	}
	return nil
}

// waitHandlersIdle waits until no request handler of this node runs (two looks a poll apart).
func (n *Node) waitHandlersIdle(ctx context.Context) error {
	idle := 0
	for {
		p := n.handlers
		p.mu.Lock()
		busy := p.active > 0 || len(p.queue) > 0
		p.mu.Unlock()
		if busy {
			idle = 0
		} else if idle++; idle >= 2 {
			return ErrDrainUnsupported
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: drain: %w", ctxErr(ctx))
		case <-n.ctx.Done():
			return ErrClosed
		case <-time.After(drainPoll):
		}
	}
}
