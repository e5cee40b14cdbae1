package envelope

import (
	"encoding/json"
	"fmt"

	"github.com/fame-go/fame/internal/jsonscan"
)

// The member walker and value readers of the header parser and the decoder, on the module's
// one JSON scanner (internal/jsonscan): they find where members and values start and end, so
// that the parser can slice the original bytes instead of copying them. UTF-8 validity is
// checked by the callers once over the whole message.

func syntaxErr(i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, i)
}

func tooDeep(i int) error {
	return fmt.Errorf("%w (limit %d) at offset %d", ErrTooDeep, MaxDepth, i)
}

// scanErr turns a scanner error into this package's: ErrSyntax or ErrTooDeep with the offset.
func scanErr(err error) error {
	if e, ok := err.(*jsonscan.Error); ok {
		if e.TooDeep() {
			return tooDeep(e.Offset)
		}
		return syntaxErr(e.Offset, e.What)
	}
	return err
}

// skipValue returns the index just past the value starting at b[i] (no leading space), in a
// container at the given depth.
func skipValue(b []byte, i, depth int) (int, error) {
	end, err := jsonscan.SkipValue(b, i, depth, MaxDepth)
	if err != nil {
		return 0, scanErr(err)
	}
	return end, nil
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
		return 0, tooDeep(i)
	}
	i = jsonscan.SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		ks := i
		ke, esc, err := jsonscan.ScanString(b, i)
		if err != nil {
			return 0, scanErr(err)
		}
		i = jsonscan.SkipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, syntaxErr(i, "expected ':'")
		}
		i = jsonscan.SkipWS(b, i+1)
		vs := i
		valEsc := false
		if i < len(b) && b[i] == '"' {
			// Strings directly, so that readers of the value know whether it needs unescaping
			// without scanning it again.
			if i, valEsc, err = jsonscan.ScanString(b, i); err != nil {
				return 0, scanErr(err)
			}
		} else if i, err = skipValue(b, i, depth+1); err != nil {
			return 0, err
		}
		if err := fn(member{key: b[ks+1 : ke-1], keyEscaped: esc, valEscaped: valEsc, valStart: vs, valEnd: i}); err != nil {
			return 0, err
		}
		i = jsonscan.SkipWS(b, i)
		if i >= len(b) {
			return 0, syntaxErr(i, "unterminated object")
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(i, "expected ',' or '}'")
		}
		i = jsonscan.SkipWS(b, i+1)
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
		if !jsonscan.IsDigit(c) {
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
