package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fame-go/fame/node"
)

// The A2A methods, as the reference names them.
const (
	MethodSend        = "tasks/send"
	MethodGet         = "tasks/get"
	MethodCancel      = "tasks/cancel"
	MethodSubscribe   = "tasks/sendSubscribe"
	MethodUnsubscribe = "tasks/sendUnsubscribe"
	MethodResubscribe = "tasks/resubscribe"
	MethodPushSet     = "tasks/pushNotification/set"
	MethodPushGet     = "tasks/pushNotification/get"
	MethodGetCard     = "agent.get_card"
)

// Agent is what Serve exposes under the A2A methods.
type Agent interface {
	AgentCard(ctx context.Context) (AgentCard, error)
	StartTask(ctx context.Context, p TaskSendParams) (Task, error)
	GetTaskStatus(ctx context.Context, p TaskQueryParams) (Task, error)
	CancelTask(ctx context.Context, p TaskIDParams) (Task, error)
	// SubscribeToTaskUpdates calls emit for each event until the task ends or ctx is done.
	SubscribeToTaskUpdates(ctx context.Context, p TaskSendParams, emit func(TaskEvent) error) error
	UnsubscribeTask(ctx context.Context, p TaskIDParams) error
}

// Resubscriber is an Agent that serves tasks/resubscribe (TaskAgent does). The reference's
// agents do not: their RPC adapters accept the method's params (TaskIdParams) and answer
// -32601 Method not found, which Ops answers too for an Agent without it.
type Resubscriber interface {
	ResubscribeTask(ctx context.Context, p TaskIDParams, emit func(TaskEvent) error) error
}

// Ops are a's A2A methods plus extra (custom methods; an extra op named like an A2A method
// replaces it), with errors mapped to the reference's JSON-RPC codes.
func Ops(a Agent, extra node.Ops) node.Ops {
	ops := node.Ops{
		MethodSend: node.Unary(func(ctx context.Context, raw json.RawMessage) (any, error) {
			var p TaskSendParams
			if err := decode(raw, &p); err != nil {
				return nil, err
			}
			return mapped(a.StartTask(ctx, p))
		}),
		MethodGet: node.Unary(func(ctx context.Context, raw json.RawMessage) (any, error) {
			var p TaskQueryParams
			if err := decode(raw, &p); err != nil {
				return nil, err
			}
			return mapped(a.GetTaskStatus(ctx, p))
		}),
		MethodCancel: node.Unary(func(ctx context.Context, raw json.RawMessage) (any, error) {
			var p TaskIDParams
			if err := decode(raw, &p); err != nil {
				return nil, err
			}
			return mapped(a.CancelTask(ctx, p))
		}),
		MethodUnsubscribe: node.Unary(func(ctx context.Context, raw json.RawMessage) (any, error) {
			var p TaskIDParams
			if err := decode(raw, &p); err != nil {
				return nil, err
			}
			if err := a.UnsubscribeTask(ctx, p); err != nil {
				return nil, toRPC(err)
			}
			return nil, nil
		}),
		MethodGetCard: node.Unary(func(ctx context.Context, _ json.RawMessage) (any, error) {
			return mapped(a.AgentCard(ctx))
		}),
		MethodPushSet: node.Unary(func(context.Context, json.RawMessage) (any, error) {
			return nil, toRPC(ErrPushNotSupported)
		}),
		MethodPushGet: node.Unary(func(context.Context, json.RawMessage) (any, error) {
			return nil, toRPC(ErrPushNotSupported)
		}),
		MethodSubscribe: node.Streaming(func(ctx context.Context, raw json.RawMessage, emit func(any) error) error {
			var p TaskSendParams
			if err := decode(raw, &p); err != nil {
				return err
			}
			if err := a.SubscribeToTaskUpdates(ctx, p, func(ev TaskEvent) error { return emit(ev) }); err != nil {
				return toRPC(err)
			}
			return nil
		}),
	}
	if r, ok := a.(Resubscriber); ok {
		ops[MethodResubscribe] = node.Streaming(func(ctx context.Context, raw json.RawMessage, emit func(any) error) error {
			var p TaskIDParams
			if err := decode(raw, &p); err != nil {
				return err
			}
			if err := r.ResubscribeTask(ctx, p, func(ev TaskEvent) error { return emit(ev) }); err != nil {
				return toRPC(err)
			}
			return nil
		})
	} else {
		ops[MethodResubscribe] = node.Unary(func(_ context.Context, raw json.RawMessage) (any, error) {
			var p TaskIDParams
			if err := decode(raw, &p); err != nil {
				return nil, err
			}
			return nil, &node.RemoteError{Code: CodeMethodNotFound, Message: "Method not found"}
		})
	}
	for name, op := range extra {
		ops[name] = op
	}
	return ops
}

// Serve serves a at address on n (see node.ServeCapabilities; caps may be nil).
func Serve(ctx context.Context, n *node.Node, address string, a Agent, extra node.Ops, caps ...string) error {
	if err := n.ServeCapabilities(ctx, address, Ops(a, extra), caps); err != nil {
		return fmt.Errorf("agent: serve %s: %w", address, err)
	}
	return nil
}

// mapped returns v, or err as the reference's JSON-RPC error.
func mapped[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, toRPC(err)
	}
	return v, nil
}

// decode reads params into v; bad params are -32602.
func decode(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return &node.RemoteError{Code: CodeInvalidParams, Message: "Invalid parameters: " + err.Error()}
	}
	return nil
}
