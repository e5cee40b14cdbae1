package envelope

import "errors"

// Limits on what the decoders accept. The reference refuses messages over 256 KiB; nesting is
// bounded so that a hostile peer cannot make a decoder recurse without limit.
const (
	MaxMessageSize = 256 << 10
	MaxDepth       = 64
)

// Errors returned by the decoders. Callers branch on them with errors.Is; the wrapping error
// says where in the input the problem was.
var (
	ErrTooLarge         = errors.New("envelope: message exceeds size limit")
	ErrSyntax           = errors.New("envelope: malformed JSON")
	ErrTooDeep          = errors.New("envelope: JSON nested too deeply")
	ErrInvalidUTF8      = errors.New("envelope: invalid UTF-8")
	ErrNotObject        = errors.New("envelope: not a JSON object")
	ErrMissingFrame     = errors.New("envelope: missing frame")
	ErrMissingFrameType = errors.New("envelope: missing frame.type")
	ErrFieldType        = errors.New("envelope: field has the wrong JSON type")
	ErrBadAddress       = errors.New("envelope: malformed address")
	// ErrDuplicateKey: a key appears twice in the envelope, frame, sec or meta once unescaped,
	// with alias spellings (replyTo/reply_to, …) counted as one key. Parsers differ on which
	// copy wins, so such a message could be routed by one copy and verified by the other.
	ErrDuplicateKey = errors.New("envelope: duplicate key")
	// ErrAmbiguousKey: a key in frame, sec or meta differs only in letter case from a name a
	// decoder reads ("Cid", "SIG"); encoding/json would read it as that name, others would not.
	ErrAmbiguousKey = errors.New("envelope: key differs from a protocol key only in letter case")
)
