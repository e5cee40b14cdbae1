package token

import "strings"

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
