package loadgen

import (
	"context"
	"errors"
	"fmt"

	"github.com/fame-go/fame/node"
)

// ErrBadResult marks a reply that arrived but was not the expected answer.
var ErrBadResult = errors.New("loadgen: unexpected result")

// Error kinds reported by Classify (nack and remote kinds carry their code after a colon).
const (
	KindTimeout   = "timeout"
	KindClosed    = "closed"
	KindCancelled = "cancelled"
	KindBadResult = "bad_result"
	KindOther     = "other"
)

// Classify names the kind of a failed call: "timeout", "nack:<CODE>", "remote:<code>",
// "closed", "cancelled", "bad_result" or "other"; "" for nil.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var nack *node.NackError
	var remote *node.RemoteError
	switch {
	case errors.As(err, &nack):
		return "nack:" + nack.Code
	case errors.As(err, &remote):
		return fmt.Sprintf("remote:%d", remote.Code)
	case errors.Is(err, node.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, node.ErrClosed):
		return KindClosed
	case errors.Is(err, context.Canceled):
		return KindCancelled
	case errors.Is(err, ErrBadResult):
		return KindBadResult
	}
	return KindOther
}
