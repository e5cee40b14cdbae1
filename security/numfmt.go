package security

import (
	"math"
	"strconv"
	"strings"
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

// formatNumber turns the wire text of a JSON number into its canonical spelling.
func formatNumber(text string, style NumberStyle) string {
	if style == JSNumbers {
		f, _ := strconv.ParseFloat(text, 64) // the decoder already validated the syntax
		return jsNumber(f)
	}
	if !strings.ContainsAny(text, ".eE") {
		if text == "-0" {
			return "0"
		}
		return text
	}
	f, _ := strconv.ParseFloat(text, 64) // overflow yields ±Inf, which Python also produces
	return pyFloatRepr(f)
}

// shortestDigits returns the shortest round-trip decimal digits of |f| and the position of
// the decimal point relative to them (value = 0.d1d2... * 10^decpt).
func shortestDigits(f float64) (digits string, decpt int) {
	s := strconv.FormatFloat(math.Abs(f), 'e', -1, 64) // d.ddddde±XX
	mant, exp, _ := strings.Cut(s, "e")
	e, _ := strconv.Atoi(exp)
	return strings.Replace(mant, ".", "", 1), e + 1
}

func pyFloatRepr(f float64) string {
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
	digits, decpt := shortestDigits(f)
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
	writeSci(&b, digits, decpt-1, 2)
	return b.String()
}

func jsNumber(f float64) string {
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return "null"
	case f == 0:
		return "0"
	}
	digits, n := shortestDigits(f)
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
		writeSci(&b, digits, n-1, 1)
	}
	return b.String()
}

func writeSci(b *strings.Builder, digits string, exp, minExpDigits int) {
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
