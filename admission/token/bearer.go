package token

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// BearerFromHeader extracts the token of an "Authorization: Bearer <t>"
// header value (scheme case-insensitive). ok is false when absent or empty.
func BearerFromHeader(h string) (tok string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(rest)
	return tok, tok != ""
}

// ReasonMissingToken is the code of a request without a bearer token (it is not a token
// refusal, so it is not a Reason of Error).
const ReasonMissingToken = "missing_token"

// Refusal is why Authenticate refused a request: the stable code (the error body's code and
// the refusal counter's label), the detail for the body, and the verifier's error (nil for a
// missing token) for the service's log line.
type Refusal struct {
	Code   string
	Detail string
	Err    error
}

// Authenticate is the bearer check of the admission services' HTTP endpoints: it reads the
// request's "Authorization: Bearer" token and verifies it into dst (a struct embedding
// Claims), within timeout when it is positive. On refusal it has set WWW-Authenticate
// (RFC 6750: plain "Bearer" for a missing token, error="invalid_token" for a refused one) and
// returns the refusal, for the service to answer in its own shape (status, log line naming the
// caller, counter by code, JSON body); nil means dst holds verified claims.
func (v *Verifier) Authenticate(w http.ResponseWriter, r *http.Request, dst Carrier, timeout time.Duration) *Refusal {
	raw, ok := BearerFromHeader(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		return &Refusal{Code: ReasonMissingToken, Detail: "Authentication failed: no bearer token"}
	}
	ctx := r.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := v.VerifyInto(ctx, raw, dst); err != nil {
		reason := string(ReasonOf(err))
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return &Refusal{Code: reason, Detail: "Authentication failed: " + reason, Err: err}
	}
	return nil
}
