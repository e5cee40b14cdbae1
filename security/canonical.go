package security

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/fame-go/fame/internal/jsonscan"
)

// encodeOpts describes one of the Python/JS json.dumps variants the reference uses.
type encodeOpts struct {
	sortKeys    bool
	ensureASCII bool   // escape every non-ASCII rune as \uXXXX (surrogate pairs above U+FFFF)
	itemSep     string // "," or ", "
	keySep      string // ":" or ": "
	numbers     NumberStyle
	dropNulls   bool // leave out null members and null array items (frame digests)
}

var (
	// canonicalOpts: json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",",":")).
	canonicalOpts = encodeOpts{sortKeys: true, itemSep: ",", keySep: ":"}
	// jsCanonicalOpts: the TS runtime's canonicalJson (JSON.stringify with sorted keys).
	jsCanonicalOpts = encodeOpts{sortKeys: true, itemSep: ",", keySep: ":", numbers: JSNumbers}
	// frameDigestOpts: canonicalOpts over the frame with null members removed.
	frameDigestOpts = encodeOpts{sortKeys: true, itemSep: ",", keySep: ":", dropNulls: true}
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
	opts := &canonicalOpts
	if style == JSNumbers {
		opts = &jsCanonicalOpts
	}
	out, err := appendEncoded(make([]byte, 0, len(raw)), raw, opts)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendCanonicalJSON appends CanonicalJSONStyle(raw, style) to dst, so that hot paths can
// reuse a buffer. On error dst is returned unchanged.
func AppendCanonicalJSON(dst, raw []byte, style NumberStyle) ([]byte, error) {
	opts := &canonicalOpts
	if style == JSNumbers {
		opts = &jsCanonicalOpts
	}
	return appendEncoded(dst, raw, opts)
}

// appendEncoded parses raw (exactly one JSON value) and appends it re-encoded with opts.
func appendEncoded(dst, raw []byte, opts *encodeOpts) ([]byte, error) {
	e := encoderPool.Get().(*encoder)
	e.in, e.opts, e.out = raw, opts, dst
	err := e.top()
	out := e.out
	e.release()
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrCanonical, err)
	}
	return out, nil
}

// memberRec is one object member written to the output: its decoded key (in encoder.keys)
// and the bytes "key":value (in encoder.out), so a whole object can be reordered at its end.
type memberRec struct {
	keyStart, keyEnd int
	segStart, segEnd int
	null             bool // value was null and (dropNulls) was not written
	use              int  // during reordering: index of the record whose bytes stand here, -1 to skip
}

// encoder re-encodes JSON in one pass: values are written as they are read, and each object
// is reordered in place once its closing brace is reached (only when its keys were not
// already sorted or had duplicates). Records and keys of enclosing objects stay below those
// of the object being read, so one set of stacks serves every nesting level.
type encoder struct {
	in       []byte
	pos      int
	opts     *encodeOpts
	out      []byte
	recs     []memberRec
	keys     []byte
	tmp      []byte
	lastNull bool
}

var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

// maxPooledScratch keeps one huge document from pinning its scratch buffers in the pool.
const maxPooledScratch = 64 << 10

func (e *encoder) release() {
	e.in, e.out, e.opts = nil, nil, nil
	e.pos = 0
	if cap(e.tmp) > maxPooledScratch || cap(e.keys) > maxPooledScratch || cap(e.recs) > maxPooledScratch/32 {
		return
	}
	e.recs, e.keys, e.tmp = e.recs[:0], e.keys[:0], e.tmp[:0]
	encoderPool.Put(e)
}

func (e *encoder) top() error {
	e.pos = jsonscan.SkipWS(e.in, 0)
	if err := e.value(0); err != nil {
		return err
	}
	if e.pos = jsonscan.SkipWS(e.in, e.pos); e.pos != len(e.in) {
		return fmt.Errorf("trailing data after JSON value at offset %d", e.pos)
	}
	return nil
}

// value encodes the value at e.pos (whitespace already skipped).
func (e *encoder) value(depth int) error {
	if depth > maxJSONDepth {
		return errTooDeep
	}
	e.lastNull = false
	in := e.in
	if e.pos >= len(in) {
		return errUnexpectedEnd
	}
	var err error
	switch c := in[e.pos]; c {
	case '{':
		return e.object(depth)
	case '[':
		return e.array(depth)
	case '"':
		mode := strCanonical
		if e.opts.ensureASCII {
			mode = strCanonicalAS
		}
		e.out, e.pos, err = readString(e.out, in, e.pos, mode)
		return err
	case 't':
		e.pos, err = jsonscan.ScanLiteral(in, e.pos, "true")
		e.out = append(e.out, "true"...)
	case 'f':
		e.pos, err = jsonscan.ScanLiteral(in, e.pos, "false")
		e.out = append(e.out, "false"...)
	case 'n':
		e.pos, err = jsonscan.ScanLiteral(in, e.pos, "null")
		e.out = append(e.out, "null"...)
		e.lastNull = true
	default:
		start := e.pos
		if e.pos, err = jsonscan.ScanNumber(in, e.pos); err == nil {
			e.out = appendNumber(e.out, in[start:e.pos], e.opts.numbers)
		}
	}
	return err
}

func (e *encoder) array(depth int) error {
	e.out = append(e.out, '[')
	e.pos = jsonscan.SkipWS(e.in, e.pos+1)
	if e.pos < len(e.in) && e.in[e.pos] == ']' {
		e.pos++
		e.out = append(e.out, ']')
		e.lastNull = false
		return nil
	}
	wrote := false
	for {
		mark := len(e.out)
		if wrote {
			e.out = append(e.out, e.opts.itemSep...)
		}
		if err := e.value(depth + 1); err != nil {
			return err
		}
		if e.opts.dropNulls && e.lastNull {
			e.out = e.out[:mark]
		} else {
			wrote = true
		}
		e.pos = jsonscan.SkipWS(e.in, e.pos)
		if e.pos >= len(e.in) {
			return errUnexpectedEnd
		}
		switch e.in[e.pos] {
		case ']':
			e.pos++
			e.out = append(e.out, ']')
			e.lastNull = false
			return nil
		case ',':
			e.pos = jsonscan.SkipWS(e.in, e.pos+1)
		default:
			return invalidJSONAt(e.in, e.pos)
		}
	}
}

func (e *encoder) object(depth int) error {
	recBase, keyBase := len(e.recs), len(e.keys)
	defer func() { e.recs, e.keys = e.recs[:recBase], e.keys[:keyBase] }()
	body := len(e.out) + 1 // first byte after '{'
	e.out = append(e.out, '{')
	e.pos = jsonscan.SkipWS(e.in, e.pos+1)
	if e.pos < len(e.in) && e.in[e.pos] == '}' {
		e.pos++
		e.out = append(e.out, '}')
		e.lastNull = false
		return nil
	}
	keyMode := strCanonical
	if e.opts.ensureASCII {
		keyMode = strCanonicalAS
	}
	wrote := false
	for {
		if e.pos >= len(e.in) || e.in[e.pos] != '"' {
			return invalidJSONAt(e.in, e.pos)
		}
		var err error
		ks := len(e.keys)
		if e.keys, _, err = readString(e.keys, e.in, e.pos, strDecoded); err != nil {
			return err
		}
		mark := len(e.out)
		if wrote {
			e.out = append(e.out, e.opts.itemSep...)
		}
		seg := len(e.out)
		e.out, e.pos, _ = readString(e.out, e.in, e.pos, keyMode) // already validated above
		e.out = append(e.out, e.opts.keySep...)
		e.pos = jsonscan.SkipWS(e.in, e.pos)
		if e.pos >= len(e.in) || e.in[e.pos] != ':' {
			return invalidJSONAt(e.in, e.pos)
		}
		e.pos = jsonscan.SkipWS(e.in, e.pos+1)
		if err := e.value(depth + 1); err != nil {
			return err
		}
		rec := memberRec{keyStart: ks, keyEnd: len(e.keys), segStart: seg, segEnd: len(e.out)}
		if e.opts.dropNulls && e.lastNull {
			e.out = e.out[:mark]
			rec.null, rec.segStart, rec.segEnd = true, mark, mark
		} else {
			wrote = true
		}
		e.recs = append(e.recs, rec)
		e.pos = jsonscan.SkipWS(e.in, e.pos)
		if e.pos >= len(e.in) {
			return errUnexpectedEnd
		}
		if e.in[e.pos] == '}' {
			e.pos++
			break
		}
		if e.in[e.pos] != ',' {
			return invalidJSONAt(e.in, e.pos)
		}
		e.pos = jsonscan.SkipWS(e.in, e.pos+1)
	}
	e.reorder(body, e.recs[recBase:])
	e.out = append(e.out, '}')
	e.lastNull = false
	return nil
}

func (e *encoder) key(r *memberRec) []byte { return e.keys[r.keyStart:r.keyEnd] }

// reorder rewrites the members written since body in the order the options ask for: sorted
// by key (code point order, which is byte order in UTF-8, which is Python's str order) or in
// first-occurrence order, with the last value of a duplicated key winning as in a Python dict.
func (e *encoder) reorder(body int, recs []memberRec) {
	if len(recs) < 2 {
		return
	}
	inOrder, dups := true, false
	for i := 1; i < len(recs); i++ {
		switch bytes.Compare(e.key(&recs[i-1]), e.key(&recs[i])) {
		case 0:
			dups, inOrder = true, false
		case 1:
			inOrder = false
		}
	}
	if inOrder || (!e.opts.sortKeys && !dups && !e.hasDups(recs)) {
		return // the output already is what was asked for
	}
	e.tmp = append(e.tmp[:0], e.out[body:]...)
	e.out = e.out[:body]
	for i := range recs {
		recs[i].segStart -= body
		recs[i].segEnd -= body
		recs[i].use = i
	}
	if e.opts.sortKeys {
		slices.SortStableFunc(recs, func(a, b memberRec) int { return bytes.Compare(e.key(&a), e.key(&b)) })
		for i := range recs {
			if i+1 < len(recs) && bytes.Equal(e.key(&recs[i]), e.key(&recs[i+1])) {
				recs[i].use = -1 // a later duplicate wins
			} else {
				recs[i].use = i
			}
		}
	} else {
		// First occurrence keeps its place, last occurrence gives the bytes (key text is the
		// same: both are the escaped decoded key).
		for i := range recs {
			if recs[i].use < 0 {
				continue
			}
			for j := i + 1; j < len(recs); j++ {
				if bytes.Equal(e.key(&recs[i]), e.key(&recs[j])) {
					recs[i].use = j
					recs[j].use = -1
				}
			}
		}
	}
	wrote := false
	for i := range recs {
		if recs[i].use < 0 {
			continue
		}
		r := &recs[recs[i].use]
		if r.null {
			continue
		}
		seg := e.tmp[r.segStart:r.segEnd]
		if wrote {
			e.out = append(e.out, e.opts.itemSep...)
		}
		e.out = append(e.out, seg...)
		wrote = true
	}
}

// hasDups reports whether two members share a key (only asked when order is kept and the
// keys are not already strictly increasing).
func (e *encoder) hasDups(recs []memberRec) bool {
	for i := range recs {
		for j := i + 1; j < len(recs); j++ {
			if bytes.Equal(e.key(&recs[i]), e.key(&recs[j])) {
				return true
			}
		}
	}
	return false
}

const hexLower = "0123456789abcdef"

// appendJSONString escapes like Python's json encoder: the short escapes for \" \\ \b \f \n
// \r \t, \u00xx (lowercase) for other control characters, and with ensureASCII every rune
// outside ' '..'~' as \uxxxx. Unlike encoding/json it never escapes <, >, & or U+2028.
// Invalid UTF-8 is written as U+FFFD.
func appendJSONString(dst []byte, s string, ensureASCII bool) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		start := i
		for i < len(s) && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' && s[i] < 0x7f {
			i++
		}
		dst = append(dst, s[start:i]...)
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = appendEscapedASCII(dst, c, ensureASCII)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case ensureASCII:
			dst = appendRune(dst, r, strCanonicalAS, true) // RuneError is U+FFFD too
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\uFFFD"...)
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexLower[(r>>12)&0xF], hexLower[(r>>8)&0xF], hexLower[(r>>4)&0xF], hexLower[r&0xF])
}
