// Package httpx holds the JSON response helpers shared by the admission
// services, so that every refusal has the same shape:
// {"detail": "<human text>", "code": "<stable reason>"}. "detail" is the key
// the reference's clients print.
package httpx

import (
	"encoding/json"
	"net/http"
)

// Error is the body of every non-2xx answer.
type Error struct {
	Detail string `json:"detail"`
	Code   string `json:"code,omitempty"`
}

// WriteJSON writes v with status; encoding failures can only come from
// programming errors and are ignored after the header is out.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes an Error body.
func WriteError(w http.ResponseWriter, status int, code, detail string) {
	WriteJSON(w, status, Error{Detail: detail, Code: code})
}
