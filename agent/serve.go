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
		MethodSend:   Handle(a.StartTask),
		MethodGet:    Handle(a.GetTaskStatus),
		MethodCancel: Handle(a.CancelTask),
		MethodUnsubscribe: Handle(func(ctx context.Context, p TaskIDParams) (any, error) {
			return nil, a.UnsubscribeTask(ctx, p)
		}),
		// The card takes no params: whatever a caller sends there is ignored, as the reference does.
		MethodGetCard: node.Unary(func(ctx context.Context, _ json.RawMessage) (any, error) {
			return mapped(a.AgentCard(ctx))
		}),
		MethodPushSet:   node.Unary(pushNotSupported),
		MethodPushGet:   node.Unary(pushNotSupported),
		MethodSubscribe: HandleStream(a.SubscribeToTaskUpdates),
	}
	if r, ok := a.(Resubscriber); ok {
		ops[MethodResubscribe] = HandleStream(r.ResubscribeTask)
	} else {
		ops[MethodResubscribe] = Handle(func(context.Context, TaskIDParams) (any, error) {
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

// pushNotSupported answers the push notification config methods as the reference's agents do,
// whatever their params.
func pushNotSupported(context.Context, json.RawMessage) (any, error) {
	return nil, toRPC(ErrPushNotSupported)
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
