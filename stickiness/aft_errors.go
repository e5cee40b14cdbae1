package stickiness

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
	ErrAFTMalformed      = errors.New("aft: malformed token")
	ErrAFTExpired        = errors.New("aft: token expired")
	ErrAFTWrongSID       = errors.New("aft: token sid does not match envelope sid")
	ErrAFTBadSignature   = errors.New("aft: bad signature")
	ErrAFTAlgNone        = errors.New("aft: unsigned token refused at level strict")
	ErrAFTUnknownKID     = errors.New("aft: unknown signing key id")
	ErrAFTUnsupportedAlg = errors.New("aft: unsupported algorithm")
	ErrAFTSIDOnly        = errors.New("aft: tokens are ignored at level sid-only")
)

var reasonErr = map[Reason]error{
	ReasonMalformed:      ErrAFTMalformed,
	ReasonExpired:        ErrAFTExpired,
	ReasonWrongSID:       ErrAFTWrongSID,
	ReasonBadSignature:   ErrAFTBadSignature,
	ReasonAlgNone:        ErrAFTAlgNone,
	ReasonUnknownKID:     ErrAFTUnknownKID,
	ReasonUnsupportedAlg: ErrAFTUnsupportedAlg,
	ReasonSIDOnly:        ErrAFTSIDOnly,
}

// AFTError is the error VerifyAFT returns. errors.Is matches the sentinel
// error of its Reason.
type AFTError struct {
	Reason Reason
	Detail string
	cause  error
}

func (e *AFTError) Error() string {
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
func (e *AFTError) Is(target error) bool { return reasonErr[e.Reason] == target }

// Unwrap exposes the underlying cause (JSON, base64 or crypto error), if any.
func (e *AFTError) Unwrap() error { return e.cause }

// ReasonOf returns the refusal reason of an error from VerifyAFT, or "" if
// err is nil or not an AFT error.
func ReasonOf(err error) Reason {
	var ae *AFTError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

func refuse(r Reason, cause error, format string, args ...any) *AFTError {
	return &AFTError{Reason: r, Detail: fmt.Sprintf(format, args...), cause: cause}
}
