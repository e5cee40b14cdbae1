package agent

import (
	"encoding/json"
	"errors"

	"github.com/fame-go/fame/node"
)

// JSON-RPC error codes the reference's agent SDK answers with.
const (
	CodeParseError                   = -32700
	CodeInvalidRequest               = -32600 // also Unauthorized (AuthorizationException)
	CodeMethodNotFound               = -32601
	CodeInvalidParams                = -32602 // also unknown / duplicate task, invalid data
	CodeInternalError                = -32603
	CodeTaskNotFound                 = -32001
	CodeTaskNotCancelable            = -32002
	CodePushNotificationNotSupported = -32003
	CodeUnsupportedOperation         = -32004
	CodeContentTypeNotSupported      = -32005
	CodeRateLimitExceeded            = -32029
)

// Errors a RunFunc or an Agent implementation returns to pick the code the caller sees,
// matching the reference's exceptions; anything else is an internal error (-32603).
var (
	ErrInvalidTask       = errors.New("agent: invalid task")                         // -32602
	ErrDuplicateTask     = errors.New("agent: duplicate task")                       // -32602
	ErrNoDataFound       = errors.New("agent: no data found")                        // -32602
	ErrTaskNotFound      = errors.New("agent: unknown or expired task")              // -32001
	ErrInvalidData       = errors.New("agent: invalid data")                         // -32602
	ErrTaskNotCancelable = errors.New("agent: task not cancelable")                  // -32002
	ErrPushNotSupported  = errors.New("agent: push notifications are not supported") // -32003
	ErrUnsupported       = errors.New("agent: unsupported operation")                // -32004
	ErrUnauthorized      = errors.New("agent: unauthorized")                         // -32600 "Unauthorized"
	ErrRateLimitExceeded = errors.New("agent: rate limit exceeded")                  // -32029
)

// toRPC maps an error as the reference's RPC adapter maps its exceptions.
func toRPC(err error) *node.RemoteError {
	var re *node.RemoteError
	if errors.As(err, &re) {
		return re
	}
	msg := err.Error()
	data := func() json.RawMessage { b, _ := json.Marshal(msg); return b }
	switch {
	case errors.Is(err, ErrInvalidTask), errors.Is(err, ErrDuplicateTask), errors.Is(err, ErrNoDataFound),
		errors.Is(err, ErrInvalidData), errors.Is(err, node.ErrInvalidParams):
		return &node.RemoteError{Code: CodeInvalidParams, Message: msg}
	case errors.Is(err, ErrTaskNotFound):
		return &node.RemoteError{Code: CodeTaskNotFound, Message: msg}
	case errors.Is(err, ErrTaskNotCancelable):
		return &node.RemoteError{Code: CodeTaskNotCancelable, Message: "Task cannot be canceled"}
	case errors.Is(err, ErrPushNotSupported):
		return &node.RemoteError{Code: CodePushNotificationNotSupported, Message: "Push Notification is not supported"}
	case errors.Is(err, ErrUnsupported):
		return &node.RemoteError{Code: CodeUnsupportedOperation, Message: msg}
	case errors.Is(err, ErrUnauthorized):
		return &node.RemoteError{Code: CodeInvalidRequest, Message: "Unauthorized", Data: data()}
	case errors.Is(err, ErrRateLimitExceeded):
		return &node.RemoteError{Code: CodeRateLimitExceeded, Message: "Rate limit exceeded", Data: data()}
	}
	return &node.RemoteError{Code: CodeInternalError, Message: msg}
}
