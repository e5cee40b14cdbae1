package security

// The encoding/json-based canonicaliser this package used before the single-pass one in
// canonical.go, kept verbatim (identifiers renamed) as the oracle of the differential tests:
// the new code must produce byte-identical output and fail on exactly the same inputs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// oracleCanonical is the old CanonicalJSONStyle / FrameDigest / Python-dumps encoder.
func oracleCanonical(raw []byte, opts *encodeOpts) ([]byte, error) {
	v, err := oracleParseJSON(raw)
	if err != nil {
		return nil, err
	}
	if opts.dropNulls {
		v = v.withoutNulls()
	}
	return v.appendTo(make([]byte, 0, len(raw)), opts), nil
}

// maxJSONDepth bounds nesting so hostile input cannot make the parser recurse without limit.
// It matches envelope.MaxDepth.

type oJSONKind uint8

const (
	oKindNull oJSONKind = iota
	oKindBool
	oKindNumber
	oKindString
	oKindArray
	oKindObject
)

// oValue is an order-preserving JSON value. Numbers keep their wire text so that each output
// style can decide how to print them (Python keeps `1.0`, JavaScript prints `1`).
type oValue struct {
	kind oJSONKind
	b    bool
	s    string // string value, or number text
	arr  []oValue
	obj  []oMember // in first-occurrence order; a duplicate key replaces the value in place (Python dict semantics)
}

type oMember struct {
	key string
	val oValue
}

// oracleParseJSON reads exactly one JSON value from raw. Trailing non-space bytes are an error.
func oracleParseJSON(raw []byte) (oValue, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := oracleParseValue(dec, 0)
	if err != nil {
		return oValue{}, fmt.Errorf("%w: %v", ErrCanonical, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return oValue{}, fmt.Errorf("%w: trailing data after JSON value", ErrCanonical)
	}
	return v, nil
}

func oracleParseValue(dec *json.Decoder, depth int) (oValue, error) {
	if depth > maxJSONDepth {
		return oValue{}, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return oValue{}, err
	}
	switch t := tok.(type) {
	case nil:
		return oValue{kind: oKindNull}, nil
	case bool:
		return oValue{kind: oKindBool, b: t}, nil
	case json.Number:
		return oValue{kind: oKindNumber, s: string(t)}, nil
	case string:
		return oValue{kind: oKindString, s: t}, nil
	case json.Delim:
		switch t {
		case '[':
			arr := []oValue{}
			for dec.More() {
				v, err := oracleParseValue(dec, depth+1)
				if err != nil {
					return oValue{}, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return oValue{}, err
			}
			return oValue{kind: oKindArray, arr: arr}, nil
		case '{':
			obj := []oMember{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return oValue{}, err
				}
				key, ok := kt.(string)
				if !ok {
					return oValue{}, errors.New("object key is not a string")
				}
				v, err := oracleParseValue(dec, depth+1)
				if err != nil {
					return oValue{}, err
				}
				obj = oracleSetMember(obj, key, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return oValue{}, err
			}
			return oValue{kind: oKindObject, obj: obj}, nil
		}
	}
	return oValue{}, fmt.Errorf("unexpected token %v", tok)
}

func oracleSetMember(obj []oMember, key string, v oValue) []oMember {
	for i := range obj {
		if obj[i].key == key {
			obj[i].val = v
			return obj
		}
	}
	return append(obj, oMember{key: key, val: v})
}

// member returns the value of key in an object value.
func (v oValue) member(key string) (oValue, bool) {
	if v.kind != oKindObject {
		return oValue{}, false
	}
	for _, m := range v.obj {
		if m.key == key {
			return m.val, true
		}
	}
	return oValue{}, false
}

// withoutNulls removes null object members and null array items recursively, as the
// reference does before digesting a non-Data frame.
func (v oValue) withoutNulls() oValue {
	switch v.kind {
	case oKindArray:
		out := make([]oValue, 0, len(v.arr))
		for _, it := range v.arr {
			if it.kind != oKindNull {
				out = append(out, it.withoutNulls())
			}
		}
		return oValue{kind: oKindArray, arr: out}
	case oKindObject:
		out := make([]oMember, 0, len(v.obj))
		for _, m := range v.obj {
			if m.val.kind != oKindNull {
				out = append(out, oMember{key: m.key, val: m.val.withoutNulls()})
			}
		}
		return oValue{kind: oKindObject, obj: out}
	}
	return v
}

func oracleStr(s string) oValue { return oValue{kind: oKindString, s: s} }

// oracleStrOrNull maps the Go zero value to JSON null, which is how the reference renders an
// absent optional header.
func oracleStrOrNull(s string) oValue {
	if s == "" {
		return oValue{kind: oKindNull}
	}
	return oracleStr(s)
}
func (v *oValue) appendTo(dst []byte, o *encodeOpts) []byte {
	switch v.kind {
	case oKindNull:
		return append(dst, "null"...)
	case oKindBool:
		if v.b {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case oKindNumber:
		return append(dst, oracleFormatNumber(v.s, o.numbers)...)
	case oKindString:
		return oracleAppendJSONString(dst, v.s, o.ensureASCII)
	case oKindArray:
		dst = append(dst, '[')
		for i := range v.arr {
			if i > 0 {
				dst = append(dst, o.itemSep...)
			}
			dst = v.arr[i].appendTo(dst, o)
		}
		return append(dst, ']')
	case oKindObject:
		members := v.obj
		if o.sortKeys && len(members) > 1 {
			// Go compares strings bytewise; for UTF-8 that is code point order, which is
			// Python's str order.
			members = slices.Clone(members)
			slices.SortFunc(members, func(a, b oMember) int { return strings.Compare(a.key, b.key) })
		}
		dst = append(dst, '{')
		for i := range members {
			if i > 0 {
				dst = append(dst, o.itemSep...)
			}
			dst = oracleAppendJSONString(dst, members[i].key, o.ensureASCII)
			dst = append(dst, o.keySep...)
			dst = members[i].val.appendTo(dst, o)
		}
		return append(dst, '}')
	}
	return dst
}

// oracleAppendJSONString escapes like Python's json encoder: the short escapes for \" \\ \b \f \n
// \r \t, \u00xx (lowercase) for other control characters, and with ensureASCII every rune
// outside ' '..'~' as \uxxxx. Unlike encoding/json it never escapes <, >, & or U+2028.
func oracleAppendJSONString(dst []byte, s string, ensureASCII bool) []byte {
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

// oracleFormatNumber turns the wire text of a JSON number into its canonical spelling.
func oracleFormatNumber(text string, style NumberStyle) string {
	if style == JSNumbers {
		f, _ := strconv.ParseFloat(text, 64) // the decoder already validated the syntax
		return oracleJSNumber(f)
	}
	if !strings.ContainsAny(text, ".eE") {
		if text == "-0" {
			return "0"
		}
		return text
	}
	f, _ := strconv.ParseFloat(text, 64) // overflow yields ±Inf, which Python also produces
	return oraclePyFloatRepr(f)
}

// oracleShortestDigits returns the shortest round-trip decimal digits of |f| and the position of
// the decimal point relative to them (value = 0.d1d2... * 10^decpt).
func oracleShortestDigits(f float64) (digits string, decpt int) {
	s := strconv.FormatFloat(math.Abs(f), 'e', -1, 64) // d.ddddde±XX
	mant, exp, _ := strings.Cut(s, "e")
	e, _ := strconv.Atoi(exp)
	return strings.Replace(mant, ".", "", 1), e + 1
}

func oraclePyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	digits, decpt := oracleShortestDigits(f)
	var b strings.Builder
	if f < 0 {
		b.WriteByte('-')
	}
	if -4 < decpt && decpt <= 16 {
		switch {
		case decpt <= 0:
			b.WriteString("0.")
			b.WriteString(strings.Repeat("0", -decpt))
			b.WriteString(digits)
		case decpt < len(digits):
			b.WriteString(digits[:decpt])
			b.WriteByte('.')
			b.WriteString(digits[decpt:])
		default:
			b.WriteString(digits)
			b.WriteString(strings.Repeat("0", decpt-len(digits)))
			b.WriteString(".0")
		}
		return b.String()
	}
	oracleWriteSci(&b, digits, decpt-1, 2)
	return b.String()
}

func oracleJSNumber(f float64) string {
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return "null"
	case f == 0:
		return "0"
	}
	digits, n := oracleShortestDigits(f)
	k := len(digits)
	var b strings.Builder
	if f < 0 {
		b.WriteByte('-')
	}
	switch {
	case k <= n && n <= 21:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", n-k))
	case 0 < n && n <= 21:
		b.WriteString(digits[:n])
		b.WriteByte('.')
		b.WriteString(digits[n:])
	case -6 < n && n <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -n))
		b.WriteString(digits)
	default:
		oracleWriteSci(&b, digits, n-1, 1)
	}
	return b.String()
}

func oracleWriteSci(b *strings.Builder, digits string, exp, minExpDigits int) {
	b.WriteByte(digits[0])
	if len(digits) > 1 {
		b.WriteByte('.')
		b.WriteString(digits[1:])
	}
	b.WriteByte('e')
	if exp < 0 {
		b.WriteByte('-')
		exp = -exp
	} else {
		b.WriteByte('+')
	}
	es := strconv.Itoa(exp)
	for i := len(es); i < minExpDigits; i++ {
		b.WriteByte('0')
	}
	b.WriteString(es)
}
func oracleParseRawObject(raw []byte) (rawObject, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var obj rawObject
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		obj.set(key, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trailing data after object")
	}
	return obj, nil
}
