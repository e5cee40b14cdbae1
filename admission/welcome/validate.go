package welcome

import (
	"strings"

	"github.com/fame-go/fame/envelope"
)

// validSystemID: a system id becomes a path segment; the rule is the sentinel's
// (envelope.ValidSystemID), so a ticket is never issued for an id the sentinel refuses.
func validSystemID(s string) bool { return envelope.ValidSystemID(s) == nil }

// validLogical: "*", or a DNS-like host name, optionally with a leading
// "*." wildcard label (security.md §3.3 step 2).
func validLogical(l string) bool {
	if l == "*" {
		return true
	}
	h := strings.TrimPrefix(l, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// splitLogicals intersects the requested logicals with the allowed patterns.
func splitLogicals(requested, allowed []string) (accepted, rejected []string) {
	for _, l := range requested {
		if envelope.LogicalAllowed(allowed, l) {
			accepted = append(accepted, l)
		} else {
			rejected = append(rejected, l)
		}
	}
	return accepted, rejected
}
