package security

import (
	"bytes"
	"math"
	"strconv"
)

// NumberStyle selects how JSON numbers are printed in canonical form.
type NumberStyle uint8

const (
	// PythonNumbers prints numbers the way Python's json.dumps prints what json.loads parsed:
	// integer literals verbatim (arbitrary size; only "-0" becomes "0"), every literal with a
	// fraction or exponent as float repr (shortest round trip, ".0" on integral values,
	// exponent form with a two-digit signed exponent outside 1e-4 <= |x| < 1e16, Infinity for
	// overflow). This is the reference signer (Python) and the default.
	PythonNumbers NumberStyle = iota
	// JSNumbers prints every number as JavaScript's Number.prototype.toString does (the TS
	// runtime's canonical JSON): all numbers are doubles, no ".0", exponent form outside
	// 1e-7 <= |x| < 1e21, overflow as null (JSON.stringify of Infinity).
	JSNumbers
)

// appendNumber appends the canonical spelling of the JSON number text (already validated).
func appendNumber(dst, text []byte, style NumberStyle) []byte {
	if style == JSNumbers {
		return appendJSNumber(dst, parseFloat(text))
	}
	if bytes.IndexAny(text, ".eE") < 0 {
		if string(text) == "-0" {
			return append(dst, '0')
		}
		return append(dst, text...)
	}
	return appendPyFloat(dst, parseFloat(text)) // overflow yields ±Inf, which Python also produces
}

// parseFloat parses validated JSON number text; the string conversion stays on the stack
// for the short numbers seen in practice.
func parseFloat(text []byte) float64 {
	f, _ := strconv.ParseFloat(string(text), 64)
	return f
}

// shortestDigits writes the shortest round-trip decimal digits of |f| into buf and returns
// them with the position of the decimal point relative to them (value = 0.d1d2... * 10^decpt).
func shortestDigits(buf *[32]byte, f float64) (digits []byte, decpt int) {
	s := strconv.AppendFloat(buf[:0], math.Abs(f), 'e', -1, 64) // d.ddddde±XX
	e := bytes.IndexByte(s, 'e')
	exp := 0
	for _, c := range s[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if s[e+1] == '-' {
		exp = -exp
	}
	digits = s[:e]
	if len(digits) > 1 { // drop the '.' after the first digit
		copy(digits[1:], digits[2:])
		digits = digits[:len(digits)-1]
	}
	return digits, exp + 1
}

func appendZeros(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, '0')
	}
	return dst
}

func appendPyFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	digits, decpt := shortestDigits(&buf, f)
	if f < 0 {
		dst = append(dst, '-')
	}
	if -4 < decpt && decpt <= 16 {
		switch {
		case decpt <= 0:
			dst = append(dst, "0."...)
			dst = appendZeros(dst, -decpt)
			return append(dst, digits...)
		case decpt < len(digits):
			dst = append(dst, digits[:decpt]...)
			dst = append(dst, '.')
			return append(dst, digits[decpt:]...)
		default:
			dst = append(dst, digits...)
			dst = appendZeros(dst, decpt-len(digits))
			return append(dst, ".0"...)
		}
	}
	return appendSci(dst, digits, decpt-1, 2)
}

func appendJSNumber(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return append(dst, "null"...)
	case f == 0:
		return append(dst, '0')
	}
	var buf [32]byte
	digits, n := shortestDigits(&buf, f)
	k := len(digits)
	if f < 0 {
		dst = append(dst, '-')
	}
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		return appendZeros(dst, n-k)
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		return append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, "0."...)
		dst = appendZeros(dst, -n)
		return append(dst, digits...)
	}
	return appendSci(dst, digits, n-1, 1)
}

func appendSci(dst, digits []byte, exp, minExpDigits int) []byte {
	dst = append(dst, digits[0])
	if len(digits) > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	if exp < 0 {
		dst = append(dst, '-')
		exp = -exp
	} else {
		dst = append(dst, '+')
	}
	if exp < 10 && minExpDigits > 1 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(exp), 10)
}
