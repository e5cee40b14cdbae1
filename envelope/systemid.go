package envelope

import "fmt"

// MaxSystemIDLen bounds a system id: ids become path segments, log fields and SPIFFE ID parts.
const MaxSystemIDLen = 128

// ValidSystemID is the one system-id rule of the sentinel and the welcome service: an id is a
// single clean path segment of at most MaxSystemIDLen bytes from the allow-list
// [A-Za-z0-9_.-], and not "." or "..". The reference SDKs generate base62 ids (16 characters
// in the TS SDK, e.g. "S5uEIpEPI0tfKqo4") and operators pick names such as "math-replica1";
// both pass. An allow-list (rather than a deny-list) also keeps out escapes (%), separators
// (/ \ @ ? # :), wildcards, whitespace, control, zero-width and bidi-override characters,
// which would make one id look like another in logs and paths. The id is checked after URL
// unescaping, so "%2F" arrives as '/', and a leftover '%' (double escaping) is refused too.
func ValidSystemID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty system id")
	case len(id) > MaxSystemIDLen:
		return fmt.Errorf("system id is %d bytes (max %d)", len(id), MaxSystemIDLen)
	case id == "." || id == "..":
		return fmt.Errorf("system id %q is a relative path segment", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("system id %q contains %q at byte %d (allowed: letters, digits, '_', '-', '.')", id, c, i)
		}
	}
	return nil
}
