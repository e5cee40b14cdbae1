package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
)

// Proxy calls a remote agent's A2A methods, by address (ByAddress) or by the capabilities
// it advertised (ByCapabilities), like the reference's remoteByAddress/remoteByCapabilities.
//
// Pinning. Several agents may advertise the same capabilities, and each knows only the tasks
// it took. A by-capability proxy therefore remembers, per task id, the physical path of the
// agent that answered tasks/send (or the first item of tasks/sendSubscribe), and sends that
// task's tasks/get, tasks/cancel, tasks/sendSubscribe, tasks/sendUnsubscribe and
// tasks/resubscribe there (node.CallAt), not to whichever agent the sentinel picks next. The
// reference's proxies (TS and Python) do not: they route every call by capability afresh. A
// pinned agent that is gone answers NO_ROUTE (node.ErrNoRoute) rather than another agent's
// "task not found". At most maxPins tasks are remembered, the oldest forgotten first (a
// forgotten task's calls go by capability again).
type Proxy struct {
	n       *node.Node
	address string
	caps    []string

	mu       sync.Mutex
	pins     map[string]string // task id -> physical path of the agent that took it
	pinOrder []string          // ids in the order pinned, for eviction
}

// maxPins bounds the tasks a by-capability proxy remembers the agent of.
const maxPins = 4096

func (p *Proxy) pinned(id string) string {
	if p.caps == nil || id == "" {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pins[id]
}

func (p *Proxy) pin(id, path string) {
	if p.caps == nil || id == "" || path == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pins == nil {
		p.pins = map[string]string{}
	}
	if _, ok := p.pins[id]; !ok {
		p.pinOrder = append(p.pinOrder, id)
	}
	p.pins[id] = path
	for len(p.pins) > maxPins {
		delete(p.pins, p.pinOrder[0])
		p.pinOrder = p.pinOrder[1:]
	}
}

// ByAddress is a proxy for the agent at address.
func ByAddress(n *node.Node, address string) *Proxy { return &Proxy{n: n, address: address} }

// ByCapabilities is a proxy for whichever agent the sentinel finds advertising every one of caps.
func ByCapabilities(n *node.Node, caps ...string) *Proxy {
	return &Proxy{n: n, caps: append([]string(nil), caps...)}
}

func (p *Proxy) call(ctx context.Context, method string, params, out any) error {
	if p.caps != nil {
		return p.n.CallCapabilities(ctx, p.caps, method, params, out)
	}
	return p.n.Call(ctx, p.address, method, params, out)
}

// taskCall is call for a method about task id: to the agent that took it when pinned.
func (p *Proxy) taskCall(ctx context.Context, id, method string, params, out any) error {
	if path := p.pinned(id); path != "" {
		return p.n.CallAt(ctx, path, p.caps, method, params, out)
	}
	return p.call(ctx, method, params, out)
}

// taskStream starts a streaming method about task id, pinned like taskCall; an unpinned
// by-capability stream pins the task to the agent whose first item arrives.
func (p *Proxy) taskStream(ctx context.Context, id, method string, params any) (*Updates, error) {
	var s *node.Stream
	var err error
	pinned := p.pinned(id)
	switch {
	case pinned != "":
		s, err = p.n.StreamAt(ctx, pinned, p.caps, method, params)
	case p.caps != nil:
		s, err = p.n.StreamCapabilities(ctx, p.caps, method, params)
	default:
		s, err = p.n.Stream(ctx, p.address, method, params)
	}
	if err != nil {
		return nil, err
	}
	u := &Updates{s: s}
	if pinned == "" && p.caps != nil {
		u.first = func(path string) { p.pin(id, path) }
	}
	return u, nil
}

// Call invokes a custom method of the remote agent.
func (p *Proxy) Call(ctx context.Context, method string, params, out any) error {
	return p.call(ctx, method, params, out)
}

// AgentCard calls agent.get_card.
func (p *Proxy) AgentCard(ctx context.Context) (AgentCard, error) {
	var c AgentCard
	return c, p.call(ctx, MethodGetCard, struct{}{}, &c)
}

// StartTask calls tasks/send. A by-capability proxy pins the task to the agent that answered
// (see Proxy); a task id already pinned goes to its agent again.
func (p *Proxy) StartTask(ctx context.Context, params TaskSendParams) (Task, error) {
	var t Task
	if p.caps == nil || p.pinned(params.ID) != "" {
		return t, p.taskCall(ctx, params.ID, MethodSend, params, &t)
	}
	path, err := p.n.CallCapabilitiesFrom(ctx, p.caps, MethodSend, params, &t)
	if err == nil {
		p.pin(params.ID, path)
	}
	return t, err
}

// GetTaskStatus calls tasks/get (pinned, see Proxy).
func (p *Proxy) GetTaskStatus(ctx context.Context, params TaskQueryParams) (Task, error) {
	var t Task
	return t, p.taskCall(ctx, params.ID, MethodGet, params, &t)
}

// CancelTask calls tasks/cancel (pinned, see Proxy).
func (p *Proxy) CancelTask(ctx context.Context, params TaskIDParams) (Task, error) {
	var t Task
	return t, p.taskCall(ctx, params.ID, MethodCancel, params, &t)
}

// UnsubscribeTask calls tasks/sendUnsubscribe (pinned, see Proxy).
func (p *Proxy) UnsubscribeTask(ctx context.Context, params TaskIDParams) error {
	return p.taskCall(ctx, params.ID, MethodUnsubscribe, params, nil)
}

// Updates is a tasks/sendSubscribe (or tasks/resubscribe) stream.
type Updates struct {
	s     *node.Stream
	first func(responder string) // pins the task on the first item; nil once done or not wanted
}

// Subscribe calls tasks/sendSubscribe (pinned, see Proxy). Read with Next until io.EOF;
// Close to stop early.
func (p *Proxy) Subscribe(ctx context.Context, params TaskSendParams) (*Updates, error) {
	return p.taskStream(ctx, params.ID, MethodSubscribe, params)
}

// Resubscribe calls tasks/resubscribe (pinned, see Proxy): the updates of a task the agent
// already has, never starting one (an unknown id is -32001). A reference agent answers
// -32601 Method not found.
func (p *Proxy) Resubscribe(ctx context.Context, params TaskIDParams) (*Updates, error) {
	return p.taskStream(ctx, params.ID, MethodResubscribe, params)
}

// Next returns the next event, io.EOF at the end of the stream.
func (u *Updates) Next(ctx context.Context) (TaskEvent, error) {
	var ev TaskEvent
	raw, err := u.s.Next(ctx)
	if err != nil {
		return ev, err
	}
	if u.first != nil {
		u.first(u.s.Responder())
		u.first = nil
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("agent: decode task event: %w", err)
	}
	return ev, nil
}

// Close ends the stream early.
func (u *Updates) Close() error { return u.s.Close() }

// ErrTaskFailed wraps the message of a task that ended failed (RunTask).
var ErrTaskFailed = errors.New("agent: task failed")

// ErrTaskCanceled is RunTask's error for a task that ended canceled.
var ErrTaskCanceled = errors.New("agent: task canceled")

// RunTask runs a task to its end as the reference's proxy does: tasks/send with payload (a
// string as a text part, anything else as data) under id (a new one when empty), then, if
// the task is still running, tasks/sendSubscribe until a terminal status. It returns the
// final status message's payload.
func (p *Proxy) RunTask(ctx context.Context, payload any, id string) (json.RawMessage, error) {
	if id == "" {
		id = envelope.NewID()
	}
	msg, err := NewMessage("user", payload)
	if err != nil {
		return nil, err
	}
	t, err := p.StartTask(ctx, TaskSendParams{ID: id, SessionID: id, Message: msg})
	if err != nil {
		return nil, err
	}
	st := t.Status
	if !st.State.Terminal() {
		empty, _ := NewMessage("user", nil)
		u, err := p.Subscribe(ctx, TaskSendParams{ID: id, SessionID: id, Message: empty})
		if err != nil {
			return nil, err
		}
		defer u.Close()
		for !st.State.Terminal() {
			ev, err := u.Next(ctx)
			if errors.Is(err, io.EOF) {
				// The stream ended without a terminal event: ask once more.
				if t, err = p.GetTaskStatus(ctx, TaskQueryParams{ID: id}); err != nil {
					return nil, err
				}
				st = t.Status
				if !st.State.Terminal() {
					return nil, fmt.Errorf("agent: task %s: update stream ended while %s", id, st.State)
				}
				break
			}
			if err != nil {
				return nil, err
			}
			if ev.Status != nil {
				st = ev.Status.Status
			}
		}
	}
	switch st.State {
	case StateFailed:
		text := "Unknown error"
		if st.Message != nil && len(st.Message.Parts) > 0 && st.Message.Parts[0].Type == "text" {
			text = st.Message.Parts[0].Text
		}
		return nil, fmt.Errorf("%w: %s", ErrTaskFailed, text)
	case StateCanceled:
		return nil, fmt.Errorf("%w: %s", ErrTaskCanceled, id)
	}
	return st.Message.Payload()
}
