package aft

import (
	"errors"
	"fmt"
)

// Reason says why an AFT was refused; it is the label of the refusal counters.
type Reason string

// Refusal reasons.
const (
	ReasonMalformed      Reason = "malformed"
	ReasonExpired        Reason = "expired"
	ReasonWrongSID       Reason = "wrong_sid"
	ReasonBadSignature   Reason = "bad_signature"
	ReasonAlgNone        Reason = "alg_none_refused"
	ReasonUnknownKID     Reason = "unknown_kid"
	ReasonUnsupportedAlg Reason = "unsupported_alg"
	ReasonSIDOnly        Reason = "sid_only"
)

// Sentinel errors, one per Reason, for errors.Is.
var (
	ErrMalformed      = errors.New("aft: malformed token")
	ErrExpired        = errors.New("aft: token expired")
	ErrWrongSID       = errors.New("aft: token sid does not match envelope sid")
	ErrBadSignature   = errors.New("aft: bad signature")
	ErrAlgNone        = errors.New("aft: unsigned token refused at level strict")
	ErrUnknownKID     = errors.New("aft: unknown signing key id")
	ErrUnsupportedAlg = errors.New("aft: unsupported algorithm")
	ErrSIDOnly        = errors.New("aft: tokens are ignored at level sid-only")
)

var reasonErr = map[Reason]error{
	ReasonMalformed:      ErrMalformed,
	ReasonExpired:        ErrExpired,
	ReasonWrongSID:       ErrWrongSID,
	ReasonBadSignature:   ErrBadSignature,
	ReasonAlgNone:        ErrAlgNone,
	ReasonUnknownKID:     ErrUnknownKID,
	ReasonUnsupportedAlg: ErrUnsupportedAlg,
	ReasonSIDOnly:        ErrSIDOnly,
}

// Error is the error Verify returns. errors.Is matches the sentinel
// error of its Reason.
type Error struct {
	Reason Reason
	Detail string
	cause  error
}

func (e *Error) Error() string {
	msg := reasonErr[e.Reason].Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

// Is reports whether target is the sentinel error of e's reason.
func (e *Error) Is(target error) bool { return reasonErr[e.Reason] == target }

// Unwrap exposes the underlying cause (JSON, base64 or crypto error), if any.
func (e *Error) Unwrap() error { return e.cause }

// ReasonOf returns the refusal reason of an error from Verify, or "" if
// err is nil or not an AFT error.
func ReasonOf(err error) Reason {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

func refuse(r Reason, cause error, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...), cause: cause}
}
