package token

import (
	"errors"
	"fmt"
)

// Reason says why a token was refused. The values are stable and suitable
// for JSON error bodies and metrics labels.
type Reason string

const (
	ReasonMalformed     Reason = "malformed"
	ReasonBadSignature  Reason = "bad_signature"
	ReasonUnknownKey    Reason = "unknown_key"
	ReasonExpired       Reason = "expired"
	ReasonNotYetValid   Reason = "not_yet_valid"
	ReasonWrongIssuer   Reason = "wrong_issuer"
	ReasonWrongAudience Reason = "wrong_audience"
	ReasonMissingScope  Reason = "missing_scope"
	ReasonReplayed      Reason = "replayed"
	// ReasonKeysUnavailable means the JWKS could not be fetched: the token may
	// be fine, the verifier could not tell.
	ReasonKeysUnavailable Reason = "keys_unavailable"
)

// Error is a refused token. errors.Is matches any *Error with the same
// Reason, so the Err* sentinels below work as targets.
type Error struct {
	Reason Reason
	Err    error // detail, may be nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "token refused: " + string(e.Reason)
	}
	return fmt.Sprintf("token refused: %s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// Sentinels for errors.Is.
var (
	ErrMalformed       = &Error{Reason: ReasonMalformed}
	ErrBadSignature    = &Error{Reason: ReasonBadSignature}
	ErrUnknownKey      = &Error{Reason: ReasonUnknownKey}
	ErrExpired         = &Error{Reason: ReasonExpired}
	ErrNotYetValid     = &Error{Reason: ReasonNotYetValid}
	ErrWrongIssuer     = &Error{Reason: ReasonWrongIssuer}
	ErrWrongAudience   = &Error{Reason: ReasonWrongAudience}
	ErrMissingScope    = &Error{Reason: ReasonMissingScope}
	ErrReplayed        = &Error{Reason: ReasonReplayed}
	ErrKeysUnavailable = &Error{Reason: ReasonKeysUnavailable}
)

// ReasonOf extracts the reason of a refusal, or "" when err is not one.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}
