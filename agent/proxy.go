package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
)

// Proxy calls a remote agent's A2A methods, by address (ByAddress) or by the capabilities
// it advertised (ByCapabilities), like the reference's remoteByAddress/remoteByCapabilities.
type Proxy struct {
	n       *node.Node
	address string
	caps    []string
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

// Call invokes a custom method of the remote agent.
func (p *Proxy) Call(ctx context.Context, method string, params, out any) error {
	return p.call(ctx, method, params, out)
}

// AgentCard calls agent.get_card.
func (p *Proxy) AgentCard(ctx context.Context) (AgentCard, error) {
	var c AgentCard
	return c, p.call(ctx, MethodGetCard, struct{}{}, &c)
}

// StartTask calls tasks/send.
func (p *Proxy) StartTask(ctx context.Context, params TaskSendParams) (Task, error) {
	var t Task
	return t, p.call(ctx, MethodSend, params, &t)
}

// GetTaskStatus calls tasks/get.
func (p *Proxy) GetTaskStatus(ctx context.Context, params TaskQueryParams) (Task, error) {
	var t Task
	return t, p.call(ctx, MethodGet, params, &t)
}

// CancelTask calls tasks/cancel.
func (p *Proxy) CancelTask(ctx context.Context, params TaskIDParams) (Task, error) {
	var t Task
	return t, p.call(ctx, MethodCancel, params, &t)
}

// UnsubscribeTask calls tasks/sendUnsubscribe.
func (p *Proxy) UnsubscribeTask(ctx context.Context, params TaskIDParams) error {
	return p.call(ctx, MethodUnsubscribe, params, nil)
}

// Updates is a tasks/sendSubscribe stream.
type Updates struct{ s *node.Stream }

// Subscribe calls tasks/sendSubscribe. Read with Next until io.EOF; Close to stop early.
func (p *Proxy) Subscribe(ctx context.Context, params TaskSendParams) (*Updates, error) {
	var s *node.Stream
	var err error
	if p.caps != nil {
		s, err = p.n.StreamCapabilities(ctx, p.caps, MethodSubscribe, params)
	} else {
		s, err = p.n.Stream(ctx, p.address, MethodSubscribe, params)
	}
	if err != nil {
		return nil, err
	}
	return &Updates{s: s}, nil
}

// Next returns the next event, io.EOF at the end of the stream.
func (u *Updates) Next(ctx context.Context) (TaskEvent, error) {
	var ev TaskEvent
	raw, err := u.s.Next(ctx)
	if err != nil {
		return ev, err
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
