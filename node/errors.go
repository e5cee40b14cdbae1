package node

import (
	"errors"
	"fmt"

	"github.com/coder/websocket"
)

// Errors callers branch on with errors.Is.
var (
	// ErrClosed: the node was closed (or closed while the operation was in flight).
	ErrClosed = errors.New("node: closed")
	// ErrTimeout: no reply (or no delivery ack after every retry) before the deadline.
	ErrTimeout = errors.New("node: timeout")
	// ErrNoRoute: the sentinel had no route for the address (nack code NO_ROUTE).
	ErrNoRoute = errors.New("node: no route")
	// ErrCapabilityEncrypted: a call by capability on a node that encrypts with channels
	// (a channel is opened to one destination address, which a capability call has not).
	ErrCapabilityEncrypted = errors.New("node: calls by capability cannot be channel-encrypted")
	// ErrNack: any negative delivery ack; *NackError matches it.
	ErrNack = errors.New("node: delivery refused")
	// ErrAttachRefused: the sentinel refused or dropped the attach handshake.
	ErrAttachRefused = errors.New("node: attach refused")
	// ErrTooManyPending: the node already waits on Config.MaxPending calls, streams and
	// acknowledged replies; the new one is refused at once rather than left untracked.
	ErrTooManyPending = errors.New("node: too many pending requests")
	// ErrReplyRefused: a reply (or stream item) to this call was refused on its way (by our
	// own security checks or by the sentinel on the serving node's side) and will never come;
	// the call fails with it rather than returning a stream with an item missing.
	ErrReplyRefused = errors.New("node: reply refused")
	// ErrConnectionLost: the connection to the sentinel, or the secure channel to the serving
	// replica (SecureClose), was lost with the call in flight and the call cannot be re-sent
	// (at-most-once delivery over a dead connection, or a stream that had already delivered
	// items, which a re-send would run again from its start): its reply, or the rest of the
	// stream, died with it. Retry it if it is idempotent.
	ErrConnectionLost = errors.New("node: connection lost with the call in flight")
	// ErrInvalidParams: an operation returns an error wrapping this one to answer -32602.
	ErrInvalidParams = errors.New("invalid params")
)

// NackError is a negative DeliveryAck for an envelope this node sent.
type NackError struct {
	Code   string // e.g. NO_ROUTE, ROUTE_CONNECTOR_CLOSED
	Reason string
}

func (e *NackError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("message delivery failed with code %q", e.Code)
	}
	return fmt.Sprintf("message delivery failed with code %q: %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrNoRoute) true for NO_ROUTE nacks and ErrNack true for all.
func (e *NackError) Is(target error) bool {
	switch target {
	case ErrNack:
		return true
	case ErrNoRoute:
		return e.Code == "NO_ROUTE"
	}
	return false
}

// AttachError says why the attach handshake failed: a negative NodeAttachAck, or the socket
// closing before the ack (with the close code and reason when there was a close frame).
type AttachError struct {
	CloseCode   websocket.StatusCode // -1 when the socket ended without a close frame
	CloseReason string
	Reason      string // from a negative NodeAttachAck, or what went wrong
	// Refused: the sentinel answered with a negative NodeAttachAck (credentials, keys or
	// certificate refused), as opposed to the connection failing.
	Refused bool
}

func (e *AttachError) Error() string {
	if e.CloseCode >= 0 {
		return fmt.Sprintf("node: attach refused: %s (close code=%d, reason=%q)", e.Reason, int(e.CloseCode), e.CloseReason)
	}
	return "node: attach refused: " + e.Reason
}

func (e *AttachError) Is(target error) bool { return target == ErrAttachRefused }

// JSON-RPC error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)
