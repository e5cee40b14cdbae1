package security

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fame-go/fame/internal/jsonscan"
)

// This file decodes JSON strings for the canonicaliser and the frame scanner, and walks the
// members of an object; validation of everything else (numbers, literals, skipped values)
// is the module's one scanner, internal/jsonscan. Together they accept exactly what
// encoding/json accepts (RFC 8259, no extensions) and decode strings exactly as encoding/json
// does (invalid UTF-8 and unpaired surrogate escapes become U+FFFD), because signatures
// computed over the output must match the ones computed by the encoding/json-based
// implementation they replaced (see canonical_oracle_test.go).

// maxJSONDepth bounds nesting so hostile input cannot make the canonicaliser recurse without
// limit. It matches envelope.MaxDepth.
const maxJSONDepth = 64

// maxSkipDepth is encoding/json's own nesting limit, which applies where we only validate a
// value and keep its bytes (frame members).
const maxSkipDepth = 10000

var (
	errUnexpectedEnd = errors.New("unexpected end of JSON input")
	errTooDeep       = errors.New("nesting too deep")
)

// invalidJSONAt is encoding/json's wording for the byte at pos (or the end of the input), used
// by the canonicaliser's own structural checks.
func invalidJSONAt(in []byte, pos int) error {
	if pos >= len(in) {
		return errUnexpectedEnd
	}
	return fmt.Errorf("invalid character %q at offset %d", in[pos], pos)
}

// hex4 reads the four hex digits of a \u escape whose 'u' is at pos-1; -1 when malformed.
func hex4(in []byte, pos int) rune {
	if len(in)-pos < 4 {
		return -1
	}
	var r rune
	for _, c := range in[pos : pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// strMode says what readString appends for a string token.
type strMode uint8

const (
	strDecoded     strMode = iota // the decoded UTF-8 text, no quotes
	strCanonical                  // quoted, escaped as Python json.dumps(ensure_ascii=False)
	strCanonicalAS                // quoted, escaped as Python json.dumps(ensure_ascii=True)
)

// readString reads the string token whose opening quote is at pos, appends it to dst in the
// given mode, and returns the position after the closing quote.
func readString(dst, in []byte, pos int, mode strMode) ([]byte, int, error) {
	pos++ // opening quote
	ascii := mode == strCanonicalAS
	if mode == strCanonical || mode == strCanonicalAS {
		dst = append(dst, '"')
	}
	for {
		// Copy the longest run that needs no decoding and no escaping.
		start := pos
		for pos < len(in) {
			c := in[pos]
			if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
				break
			}
			pos++
		}
		dst = append(dst, in[start:pos]...)
		if pos >= len(in) {
			return dst, pos, errUnexpectedEnd
		}
		c := in[pos]
		switch {
		case c == '"':
			if mode == strCanonical || mode == strCanonicalAS {
				dst = append(dst, '"')
			}
			return dst, pos + 1, nil
		case c < 0x20:
			return dst, pos, invalidJSONAt(in, pos)
		case c == '\\':
			if pos+1 >= len(in) {
				return dst, pos, errUnexpectedEnd
			}
			var r rune
			switch in[pos+1] {
			case '"', '\\', '/':
				r = rune(in[pos+1])
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				r = hex4(in, pos+2)
				if r < 0 {
					return dst, pos, invalidJSONAt(in, pos+2)
				}
				if utf16.IsSurrogate(r) {
					// Same pairing rule as encoding/json: a surrogate that does not form a
					// valid pair with an immediately following \u escape becomes U+FFFD and
					// the following escape is read on its own.
					r2 := rune(-1)
					if pos+7 < len(in) && in[pos+6] == '\\' && in[pos+7] == 'u' {
						r2 = hex4(in, pos+8)
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						pos += 6
					} else {
						r = utf8.RuneError
					}
				}
				pos += 4
			default:
				return dst, pos, invalidJSONAt(in, pos+1)
			}
			pos += 2
			dst = appendRune(dst, r, mode, ascii)
		default: // DEL or a non-ASCII byte
			r, size := utf8.DecodeRune(in[pos:])
			if r == utf8.RuneError && size == 1 {
				dst = appendRune(dst, utf8.RuneError, mode, ascii)
			} else if r < utf8.RuneSelf || ascii || mode == strDecoded {
				dst = appendRune(dst, r, mode, ascii)
			} else {
				dst = append(dst, in[pos:pos+size]...)
			}
			pos += size
		}
	}
}

// appendRune appends one decoded rune in the given mode.
func appendRune(dst []byte, r rune, mode strMode, ascii bool) []byte {
	if mode == strDecoded {
		return utf8.AppendRune(dst, r)
	}
	if r < utf8.RuneSelf {
		return appendEscapedASCII(dst, byte(r), ascii)
	}
	if !ascii {
		return utf8.AppendRune(dst, r)
	}
	if r > 0xFFFF {
		r -= 0x10000
		dst = appendU4(dst, 0xD800+(r>>10))
		return appendU4(dst, 0xDC00+(r&0x3FF))
	}
	return appendU4(dst, r)
}

// appendEscapedASCII writes one ASCII character as Python's json encoder does.
func appendEscapedASCII(dst []byte, c byte, ascii bool) []byte {
	switch c {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if c < 0x20 || (ascii && c == 0x7f) {
		return appendU4(dst, rune(c))
	}
	return append(dst, c)
}

// objectScanner walks the members of a JSON object (exactly one object, whitespace around it
// allowed) without building anything: each next call returns the decoded key (appended to the
// caller's scratch) and the exact bytes of the value. Values are validated as encoding/json
// would. An iterator rather than a callback: arguments passed to a func value escape, which
// would put the caller's stack buffers on the heap.
type objectScanner struct {
	raw   []byte
	pos   int
	state uint8 // 0 before '{', 1 expecting a member or '}', 2 expecting ',' or '}', 3 done
}

func newObjectScanner(raw []byte) objectScanner { return objectScanner{raw: raw} }

// next returns the next member; ok is false at the end of the object (trailing data checked).
func (s *objectScanner) next(scratch []byte) (key, val []byte, ok bool, err error) {
	raw := s.raw
	switch s.state {
	case 0:
		pos := jsonscan.SkipWS(raw, 0)
		if pos >= len(raw) {
			return nil, nil, false, errUnexpectedEnd
		}
		if raw[pos] != '{' {
			return nil, nil, false, errors.New("not a JSON object")
		}
		s.pos = jsonscan.SkipWS(raw, pos+1)
		if s.pos < len(raw) && raw[s.pos] == '}' {
			return nil, nil, false, s.finish(s.pos + 1)
		}
	case 2:
		pos := jsonscan.SkipWS(raw, s.pos)
		if pos >= len(raw) {
			return nil, nil, false, errUnexpectedEnd
		}
		if raw[pos] == '}' {
			return nil, nil, false, s.finish(pos + 1)
		}
		if raw[pos] != ',' {
			return nil, nil, false, invalidJSONAt(raw, pos)
		}
		s.pos = jsonscan.SkipWS(raw, pos+1)
	case 3:
		return nil, nil, false, nil
	}
	s.state = 1
	pos := s.pos
	if pos >= len(raw) || raw[pos] != '"' {
		return nil, nil, false, invalidJSONAt(raw, pos)
	}
	if key, pos, err = readString(scratch, raw, pos, strDecoded); err != nil {
		return nil, nil, false, err
	}
	pos = jsonscan.SkipWS(raw, pos)
	if pos >= len(raw) || raw[pos] != ':' {
		return nil, nil, false, invalidJSONAt(raw, pos)
	}
	vstart := jsonscan.SkipWS(raw, pos+1)
	if pos, err = jsonscan.SkipValue(raw, vstart, 0, maxSkipDepth); err != nil {
		return nil, nil, false, err
	}
	s.pos, s.state = pos, 2
	return key, raw[vstart:pos], true, nil
}

func (s *objectScanner) finish(pos int) error {
	s.state = 3
	if jsonscan.SkipWS(s.raw, pos) != len(s.raw) {
		return errors.New("trailing data after object")
	}
	return nil
}

// stringValue decodes a member value that must be a JSON string or null (null and absent
// give ""), appending the text to dst. It mirrors json.Unmarshal into a string.
func stringValue(dst, val []byte) ([]byte, error) {
	if len(val) == 0 || string(val) == "null" {
		return dst, nil
	}
	if val[0] != '"' {
		return dst, errors.New("value is not a string")
	}
	dst, _, err := readString(dst, val, 0, strDecoded)
	return dst, err
}
