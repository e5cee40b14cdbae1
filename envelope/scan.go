package envelope

import (
	"encoding/json"
	"fmt"
)

// A small validating JSON scanner. It never builds values: it finds where members and values
// start and end, so the header parser and the decoder can slice the original bytes instead of
// copying them. Everything it accepts is valid JSON (RFC 8259); UTF-8 validity is checked by
// the callers once over the whole message.

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

func syntaxErr(i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, i)
}

// scanString expects b[i] == '"' and returns the index just past the closing quote and
// whether the string contains escapes.
func scanString(b []byte, i int) (int, bool, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, false, syntaxErr(i, "expected string")
	}
	escaped := false
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
					if !isHex(b[j+k]) {
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

// strSpecial marks the bytes that end a plain run inside a JSON string.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func scanNumber(b []byte, i int) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, syntaxErr(i, "truncated number")
	}
	if b[i] == '0' {
		i++
	} else if isDigit(b[i]) {
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	} else {
		return 0, syntaxErr(i, "bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, syntaxErr(i, "bad fraction")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, syntaxErr(i, "bad exponent")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i == start {
		return 0, syntaxErr(i, "bad number")
	}
	return i, nil
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, syntaxErr(i, "bad literal")
	}
	return i + len(lit), nil
}

// skipValue returns the index just past the value starting at b[i] (no leading space).
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, syntaxErr(i, "expected value")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '{':
		return skipContainer(b, i, depth+1, '}')
	case c == '[':
		return skipContainer(b, i, depth+1, ']')
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == '-' || isDigit(c):
		return scanNumber(b, i)
	default:
		return 0, syntaxErr(i, "unexpected character")
	}
}

func skipContainer(b []byte, i, depth int, closer byte) (int, error) {
	if depth > MaxDepth {
		return 0, fmt.Errorf("%w (limit %d) at offset %d", ErrTooDeep, MaxDepth, i)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, nil
	}
	for {
		var err error
		if closer == '}' {
			if i, _, err = scanString(b, i); err != nil {
				return 0, err
			}
			i = skipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return 0, syntaxErr(i, "expected ':'")
			}
			i = skipWS(b, i+1)
		}
		if i, err = skipValue(b, i, depth); err != nil {
			return 0, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, syntaxErr(i, "unterminated container")
		}
		if b[i] == closer {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(i, "expected ',' or closer")
		}
		i = skipWS(b, i+1)
	}
}

// member is one key/value pair of an object, as spans of the original bytes.
type member struct {
	key        []byte // raw key without quotes (still escaped when keyEscaped)
	keyEscaped bool
	valEscaped bool // the value is a string with escapes
	valStart   int
	valEnd     int
}

// eachMember walks the object starting at b[i] (which must be '{') and calls fn for each
// member. It returns the index just past the object.
func eachMember(b []byte, i, depth int, fn func(m member) error) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, ErrNotObject
	}
	if depth+1 > MaxDepth {
		return 0, fmt.Errorf("%w (limit %d) at offset %d", ErrTooDeep, MaxDepth, i)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		ks := i
		ke, esc, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, syntaxErr(i, "expected ':'")
		}
		i = skipWS(b, i+1)
		vs := i
		valEsc := false
		if i < len(b) && b[i] == '"' {
			// Strings directly, so that readers of the value know whether it needs unescaping
			// without scanning it again.
			if i, valEsc, err = scanString(b, i); err != nil {
				return 0, err
			}
		} else if i, err = skipValue(b, i, depth+1); err != nil {
			return 0, err
		}
		if err := fn(member{key: b[ks+1 : ke-1], keyEscaped: esc, valEscaped: valEsc, valStart: vs, valEnd: i}); err != nil {
			return 0, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, syntaxErr(i, "unterminated object")
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(i, "expected ',' or '}'")
		}
		i = skipWS(b, i+1)
	}
}

// keyString returns the member's key as a Go string, unescaping when needed.
func (m member) keyString() string {
	if !m.keyEscaped {
		return string(m.key)
	}
	var s string
	// The scanner already validated the escapes, so this cannot fail on syntax.
	q := make([]byte, 0, len(m.key)+2)
	q = append(append(append(q, '"'), m.key...), '"')
	if err := json.Unmarshal(q, &s); err != nil {
		return string(m.key)
	}
	return s
}

// stringValue returns the JSON string at v (a full JSON value span) as a Go string.
func stringValue(v []byte) (string, error) {
	if len(v) < 2 || v[0] != '"' {
		return "", ErrFieldType
	}
	body := v[1 : len(v)-1]
	for _, c := range body {
		if c == '\\' {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return "", fmt.Errorf("%w: %v", ErrSyntax, err)
			}
			return s, nil
		}
	}
	return string(body), nil
}

// intValue parses a JSON integer value span.
func intValue(v []byte) (int64, error) {
	if len(v) == 0 {
		return 0, ErrFieldType
	}
	neg := false
	i := 0
	if v[0] == '-' {
		neg = true
		i = 1
	}
	if i >= len(v) {
		return 0, ErrFieldType
	}
	var n int64
	for ; i < len(v); i++ {
		c := v[i]
		if !isDigit(c) {
			// Accept integral floats such as 3.0 as JSON numbers decoders elsewhere would.
			var f float64
			if err := json.Unmarshal(v, &f); err != nil || f != float64(int64(f)) {
				return 0, ErrFieldType
			}
			return int64(f), nil
		}
		if n > (1<<62)/10 {
			return 0, fmt.Errorf("%w: integer overflow", ErrFieldType)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}
