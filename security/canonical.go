package security

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// encodeOpts describes one of the Python/JS json.dumps variants the reference uses.
type encodeOpts struct {
	sortKeys    bool
	ensureASCII bool   // escape every non-ASCII rune as \uXXXX (surrogate pairs above U+FFFF)
	itemSep     string // "," or ", "
	keySep      string // ":" or ": "
	numbers     NumberStyle
}

var (
	// canonicalOpts: json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",",":")).
	canonicalOpts = encodeOpts{sortKeys: true, itemSep: ",", keySep: ":"}
	// jsCanonicalOpts: the TS runtime's canonicalJson (JSON.stringify with sorted keys).
	jsCanonicalOpts = encodeOpts{sortKeys: true, itemSep: ",", keySep: ":", numbers: JSNumbers}
	// pyDefaultOpts: plain json.dumps(obj) — insertion order, ", " and ": ", ASCII only.
	pyDefaultOpts = encodeOpts{ensureASCII: true, itemSep: ", ", keySep: ": "}
	// pyCompactOpts: json.dumps(obj, separators=(",",":")) — insertion order, ASCII only.
	pyCompactOpts = encodeOpts{ensureASCII: true, itemSep: ",", keySep: ":"}
)

// CanonicalJSON returns the canonical form of the JSON text raw, byte-identical to Python's
// json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=False, separators=(",",":")).
//
// Numbers: integer literals are kept verbatim (any size; "-0" becomes "0"); any literal with
// a fraction or exponent is parsed as a float64 and printed as Python's float repr, so wire
// text Python would print differently is normalised the same way Python does it: "1.10" ->
// "1.1", "1E5" -> "100000.0", "1e16" -> "1e+16", "0.00001" -> "1e-05", digits beyond double
// precision are rounded, and an overflowing literal such as "1e400" becomes "Infinity" (as in
// Python). Python would refuse integers above 4300 digits; we print them. NaN/Infinity input
// literals are not JSON and are rejected. Strings: invalid UTF-8 and lone surrogate escapes
// become U+FFFD (Python would fail to encode a lone surrogate at all). Duplicate keys: the
// last value wins, as in Python.
func CanonicalJSON(raw []byte) ([]byte, error) {
	return CanonicalJSONStyle(raw, PythonNumbers)
}

// CanonicalJSONStyle is CanonicalJSON with a choice of number printing; JSNumbers reproduces
// the TS runtime, whose payload digests differ from Python's for floats such as 1.0.
func CanonicalJSONStyle(raw []byte, style NumberStyle) ([]byte, error) {
	v, err := parseJSON(raw)
	if err != nil {
		return nil, err
	}
	opts := canonicalOpts
	opts.numbers = style
	return v.appendTo(make([]byte, 0, len(raw)), &opts), nil
}

func (v *jvalue) appendTo(dst []byte, o *encodeOpts) []byte {
	switch v.kind {
	case kindNull:
		return append(dst, "null"...)
	case kindBool:
		if v.b {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case kindNumber:
		return append(dst, formatNumber(v.s, o.numbers)...)
	case kindString:
		return appendJSONString(dst, v.s, o.ensureASCII)
	case kindArray:
		dst = append(dst, '[')
		for i := range v.arr {
			if i > 0 {
				dst = append(dst, o.itemSep...)
			}
			dst = v.arr[i].appendTo(dst, o)
		}
		return append(dst, ']')
	case kindObject:
		members := v.obj
		if o.sortKeys && len(members) > 1 {
			// Go compares strings bytewise; for UTF-8 that is code point order, which is
			// Python's str order.
			members = slices.Clone(members)
			slices.SortFunc(members, func(a, b jmember) int { return strings.Compare(a.key, b.key) })
		}
		dst = append(dst, '{')
		for i := range members {
			if i > 0 {
				dst = append(dst, o.itemSep...)
			}
			dst = appendJSONString(dst, members[i].key, o.ensureASCII)
			dst = append(dst, o.keySep...)
			dst = members[i].val.appendTo(dst, o)
		}
		return append(dst, '}')
	}
	return dst
}

const hexLower = "0123456789abcdef"

// appendJSONString escapes like Python's json encoder: the short escapes for \" \\ \b \f \n
// \r \t, \u00xx (lowercase) for other control characters, and with ensureASCII every rune
// outside ' '..'~' as \uxxxx. Unlike encoding/json it never escapes <, >, & or U+2028.
func appendJSONString(dst []byte, s string, ensureASCII bool) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				if c < 0x20 || (ensureASCII && c == 0x7f) {
					dst = appendU4(dst, rune(c))
				} else {
					dst = append(dst, c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !ensureASCII {
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
		} else if r > 0xFFFF {
			r -= 0x10000
			dst = appendU4(dst, 0xD800+(r>>10))
			dst = appendU4(dst, 0xDC00+(r&0x3FF))
		} else {
			dst = appendU4(dst, r)
		}
		i += size
	}
	return append(dst, '"')
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexLower[(r>>12)&0xF], hexLower[(r>>8)&0xF], hexLower[(r>>4)&0xF], hexLower[r&0xF])
}
