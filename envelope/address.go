package envelope

import (
	"fmt"
	"strings"
)

// Address is a FameAddress: participant@location, where the location is a host
// (math@fame.fabric, math@*.fame.fabric), a path (__sys__@/sentinel/child) or host+path.
type Address struct {
	Participant string
	Host        string // dot-separated; "*." prefix for a wildcard pool
	Path        string // starts with "/" when present
}

// ParseAddress parses s with the reference's rules: split at the last '@'; participant
// [A-Za-z0-9_-]+; host segments [A-Za-z0-9-]+ with '*' only as the leftmost segment; path
// segments [A-Za-z0-9._-]+ (a trailing "*" or "**" segment marks a legacy path pool).
func ParseAddress(s string) (Address, error) {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Address{}, fmt.Errorf("%w: %q: want participant@location", ErrBadAddress, s)
	}
	a := Address{Participant: s[:at]}
	if !validParticipant(a.Participant) {
		return Address{}, fmt.Errorf("%w: %q: bad participant", ErrBadAddress, s)
	}
	loc := s[at+1:]
	if slash := strings.IndexByte(loc, '/'); slash >= 0 {
		a.Host, a.Path = loc[:slash], loc[slash:]
	} else {
		a.Host = loc
	}
	if a.Host != "" && !validHost(a.Host) {
		return Address{}, fmt.Errorf("%w: %q: bad host %q", ErrBadAddress, s, a.Host)
	}
	if a.Path != "" && !validPath(a.Path, a.Host == "") {
		return Address{}, fmt.Errorf("%w: %q: bad path %q", ErrBadAddress, s, a.Path)
	}
	return a, nil
}

func (a Address) String() string { return a.Participant + "@" + a.Host + a.Path }

// IsWildcard reports whether the address binds a pool (host "*.x" or path ending "/*", "/**").
func (a Address) IsWildcard() bool {
	return strings.HasPrefix(a.Host, "*.") || a.Host == "*" ||
		strings.HasSuffix(a.Path, "/*") || strings.HasSuffix(a.Path, "/**")
}

// IsPhysical reports whether the address is path-only (routed by physical path).
func (a Address) IsPhysical() bool { return a.Host == "" && a.Path != "" }

func validParticipant(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(isAlnum(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func validHost(h string) bool {
	segs := strings.Split(h, ".")
	for i, s := range segs {
		if s == "*" && i == 0 {
			continue
		}
		if s == "" {
			return false
		}
		for j := 0; j < len(s); j++ {
			if !(isAlnum(s[j]) || s[j] == '-') {
				return false
			}
		}
	}
	return true
}

func validPath(p string, pathOnly bool) bool {
	if p == "/" {
		return true
	}
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if (s == "*" || s == "**") && i == len(segs)-1 && i > 0 {
			continue
		}
		if s == "" {
			return false
		}
		for j := 0; j < len(s); j++ {
			if c := s[j]; !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// MatchPool reports whether host is served by the wildcard pattern "*.suffix": the host equals
// the suffix (math@fame.fabric is served by math@*.fame.fabric) or ends with ".suffix".
func MatchPool(pattern, host string) bool {
	suffix, ok := strings.CutPrefix(pattern, "*.")
	if !ok {
		return pattern == "*"
	}
	return host == suffix || (len(host) > len(suffix) && strings.HasSuffix(host, suffix) && host[len(host)-len(suffix)-1] == '.')
}

// LogicalAllowed reports whether host may be bound by a node that requested the given
// logicals: "*" allows everything; "fame.fabric" allows fame.fabric and its subdomains;
// "*.fame.fabric" allows the same, including pool binds "*.fame.fabric".
func LogicalAllowed(logicals []string, host string) bool {
	for _, l := range logicals {
		if l == "*" {
			return true
		}
		base := strings.TrimPrefix(l, "*.")
		h := strings.TrimPrefix(host, "*.")
		if h == base || strings.HasSuffix(h, "."+base) {
			return true
		}
	}
	return false
}

// SplitInbox returns the participant and the location of an address string without validating
// it; routers use it on the hot path where the full parse is not needed.
func SplitInbox(s string) (participant, location string, ok bool) {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", "", false
	}
	return s[:at], s[at+1:], true
}

// UnderPath reports whether the physical path is prefix or lies below it ("/a/b" is under
// "/a", "/ab" is not). An empty prefix or the bare root "/" owns nothing, not even itself: no
// node has either path, and treating them as owners would grant the whole tree.
func UnderPath(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return false
	}
	return path == prefix || len(path) > len(prefix) && path[:len(prefix)] == prefix && path[len(prefix)] == '/'
}
