package jsonscan

import "strconv"

// Error is a syntax error, or (Limit > 0) nesting deeper than Limit, at byte Offset.
type Error struct {
	Offset int
	What   string // what was wrong, e.g. "expected ':'"; empty for a depth error
	Limit  int    // the nesting limit that was exceeded; 0 for a syntax error
}

func (e *Error) Error() string {
	if e.Limit > 0 {
		return "nesting deeper than " + strconv.Itoa(e.Limit) + " at offset " + strconv.Itoa(e.Offset)
	}
	return e.What + " at offset " + strconv.Itoa(e.Offset)
}

// TooDeep reports whether e is a depth error.
func (e *Error) TooDeep() bool { return e.Limit > 0 }

func syntaxErr(i int, what string) error { return &Error{Offset: i, What: what} }

// IsWS reports whether c is JSON whitespace.
func IsWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipWS returns the index of the first non-whitespace byte at or after i (len(b) if none).
func SkipWS(b []byte, i int) int {
	for i < len(b) && IsWS(b[i]) {
		i++
	}
	return i
}

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return c >= '0' && c <= '9' }

// IsHex reports whether c is an ASCII hexadecimal digit.
func IsHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// strSpecial marks the bytes that end a plain run inside a JSON string.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// ScanString expects b[i] == '"' and returns the index just past the closing quote and
// whether the string contains escapes. Escapes are validated (including the four hex digits
// of \u); bytes of 0x80 and above are passed over as they are.
func ScanString(b []byte, i int) (end int, escaped bool, err error) {
	if i >= len(b) || b[i] != '"' {
		return 0, false, syntaxErr(i, "expected string")
	}
	for j := i + 1; j < len(b); j++ {
		// Skip the plain run first: one table load per byte instead of three compares.
		for j < len(b) && !strSpecial[b[j]] {
			j++
		}
		if j >= len(b) {
			break
		}
		c := b[j]
		switch {
		case c == '"':
			return j + 1, escaped, nil
		case c == '\\':
			escaped = true
			j++
			if j >= len(b) {
				return 0, false, syntaxErr(j, "unterminated escape")
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, false, syntaxErr(j, "short unicode escape")
				}
				for k := 1; k <= 4; k++ {
					if !IsHex(b[j+k]) {
						return 0, false, syntaxErr(j+k, "bad unicode escape")
					}
				}
				j += 4
			default:
				return 0, false, syntaxErr(j, "bad escape")
			}
		case c < 0x20:
			return 0, false, syntaxErr(j, "control character in string")
		}
	}
	return 0, false, syntaxErr(len(b), "unterminated string")
}

// ScanNumber returns the index just past the number starting at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func ScanNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, syntaxErr(i, "truncated number")
	}
	if b[i] == '0' {
		i++
	} else if IsDigit(b[i]) {
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	} else {
		return 0, syntaxErr(i, "bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !IsDigit(b[i]) {
			return 0, syntaxErr(i, "bad fraction")
		}
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !IsDigit(b[i]) {
			return 0, syntaxErr(i, "bad exponent")
		}
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

// ScanLiteral checks that b[i:] starts with lit (true, false, null) and returns the index
// just past it.
func ScanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, syntaxErr(i, "bad literal")
	}
	return i + len(lit), nil
}

// SkipValue validates the value starting at b[i] (no leading whitespace) and returns the index
// just past it. depth is the nesting depth of the value's container; a container that would
// nest deeper than max is refused.
func SkipValue(b []byte, i, depth, max int) (int, error) {
	if i >= len(b) {
		return 0, syntaxErr(i, "expected value")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := ScanString(b, i)
		return end, err
	case c == '{':
		return skipContainer(b, i, depth+1, max, '}')
	case c == '[':
		return skipContainer(b, i, depth+1, max, ']')
	case c == 't':
		return ScanLiteral(b, i, "true")
	case c == 'f':
		return ScanLiteral(b, i, "false")
	case c == 'n':
		return ScanLiteral(b, i, "null")
	case c == '-' || IsDigit(c):
		return ScanNumber(b, i)
	default:
		return 0, syntaxErr(i, "unexpected character")
	}
}

func skipContainer(b []byte, i, depth, max int, closer byte) (int, error) {
	if depth > max {
		return 0, &Error{Offset: i, Limit: max}
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, nil
	}
	for {
		var err error
		if closer == '}' {
			if i, _, err = ScanString(b, i); err != nil {
				return 0, err
			}
			i = SkipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return 0, syntaxErr(i, "expected ':'")
			}
			i = SkipWS(b, i+1)
		}
		if i, err = SkipValue(b, i, depth, max); err != nil {
			return 0, err
		}
		i = SkipWS(b, i)
		if i >= len(b) {
			return 0, syntaxErr(i, "unterminated container")
		}
		if b[i] == closer {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(i, "expected ',' or closer")
		}
		i = SkipWS(b, i+1)
	}
}
