package admit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors callers branch on. Every error returned by this package wraps
// exactly one of them (an *HTTPError matches through its Is method).
var (
	// ErrConfig: the configuration or environment is unusable.
	ErrConfig = errors.New("admit: invalid configuration")
	// ErrUnauthorized: a service refused our credentials (HTTP 401/403, or an
	// OAuth2 invalid_client/unauthorized_client answer).
	ErrUnauthorized = errors.New("admit: credentials refused")
	// ErrRejected: a service refused the request itself (other 4xx).
	ErrRejected = errors.New("admit: request refused")
	// ErrUnavailable: the service could not be reached, timed out or failed
	// (transport error, 5xx); retrying later may help.
	ErrUnavailable = errors.New("admit: service unavailable")
	// ErrBadResponse: a 2xx answer that cannot be used (bad JSON, missing
	// fields, wrong frame type).
	ErrBadResponse = errors.New("admit: unusable response")
	// ErrNoAttachGrant: the welcome carries no node.attach grant (the node is
	// a root, or the service is misconfigured).
	ErrNoAttachGrant = errors.New("admit: welcome has no node.attach grant")
	// ErrNoCAGrant: the welcome carries no ca_sign grant.
	ErrNoCAGrant = errors.New("admit: welcome has no ca_sign grant")
	// ErrTimeout: a request exceeded its time budget. It is always wrapped
	// together with ErrUnavailable.
	ErrTimeout = errors.New("admit: timed out")
	// ErrPlacement: a certificate was issued for another placement than the
	// one asked for (the welcome grant changed meanwhile).
	ErrPlacement = errors.New("admit: placement changed")
)

// HTTPError is a non-2xx answer from an admission service.
type HTTPError struct {
	Op     string // "token", "hello", "sign"
	URL    string
	Status int
	// Code is the OAuth2 "error" or the admission services' "code";
	// Description is "error_description" or "detail".
	Code        string
	Description string
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "admit: %s: POST %s: HTTP %d", e.Op, e.URL, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Description != "" && e.Description != e.Code {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	return b.String()
}

// Is maps the status onto the package's sentinel errors.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.unauthorized()
	case ErrRejected:
		return e.Status >= 400 && e.Status < 500 && !e.unauthorized() && e.Status != http.StatusTooManyRequests && e.Status != http.StatusRequestTimeout
	case ErrUnavailable:
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status < 400
	}
	return false
}

func (e *HTTPError) unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden ||
		e.Code == "invalid_client" || e.Code == "unauthorized_client"
}

// maxErrorBody bounds how much of an error answer is read and kept.
const maxErrorBody = 4 << 10

// newHTTPError decodes the body shapes the services use: RFC 6749
// {"error","error_description"}, ours {"detail","code"}, and the reference's
// FastAPI {"detail": {"error", "error_description"}}; anything else is kept
// as a short text excerpt.
func newHTTPError(op, url string, status int, body []byte) *HTTPError {
	e := &HTTPError{Op: op, URL: url, Status: status}
	var v struct {
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
		Message     string          `json:"message"`
		Code        string          `json:"code"`
		Detail      json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) != nil {
		e.Description = excerpt(body)
		return e
	}
	e.Code, e.Description = firstNonEmpty(v.Error, v.Code), firstNonEmpty(v.Description, v.Message)
	if len(v.Detail) > 0 {
		var s string
		var obj struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		switch {
		case json.Unmarshal(v.Detail, &s) == nil:
			e.Description = firstNonEmpty(e.Description, s)
		case json.Unmarshal(v.Detail, &obj) == nil:
			e.Code = firstNonEmpty(e.Code, obj.Error)
			e.Description = firstNonEmpty(e.Description, obj.Description)
		}
	}
	return e
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// excerpt keeps error text printable and short.
func excerpt(b []byte) string {
	const max = 200
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if len(s) > max {
		// Cutting may split a rune; drop the partial one.
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
