package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxJSONDepth bounds nesting so hostile input cannot make the parser recurse without limit.
// It matches envelope.MaxDepth.
const maxJSONDepth = 64

type jsonKind uint8

const (
	kindNull jsonKind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

// jvalue is an order-preserving JSON value. Numbers keep their wire text so that each output
// style can decide how to print them (Python keeps `1.0`, JavaScript prints `1`).
type jvalue struct {
	kind jsonKind
	b    bool
	s    string // string value, or number text
	arr  []jvalue
	obj  []jmember // in first-occurrence order; a duplicate key replaces the value in place (Python dict semantics)
}

type jmember struct {
	key string
	val jvalue
}

// parseJSON reads exactly one JSON value from raw. Trailing non-space bytes are an error.
func parseJSON(raw []byte) (jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return jvalue{}, fmt.Errorf("%w: %v", ErrCanonical, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jvalue{}, fmt.Errorf("%w: trailing data after JSON value", ErrCanonical)
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (jvalue, error) {
	if depth > maxJSONDepth {
		return jvalue{}, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return jvalue{}, err
	}
	switch t := tok.(type) {
	case nil:
		return jvalue{kind: kindNull}, nil
	case bool:
		return jvalue{kind: kindBool, b: t}, nil
	case json.Number:
		return jvalue{kind: kindNumber, s: string(t)}, nil
	case string:
		return jvalue{kind: kindString, s: t}, nil
	case json.Delim:
		switch t {
		case '[':
			arr := []jvalue{}
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return jvalue{}, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return jvalue{}, err
			}
			return jvalue{kind: kindArray, arr: arr}, nil
		case '{':
			obj := []jmember{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jvalue{}, err
				}
				key, ok := kt.(string)
				if !ok {
					return jvalue{}, errors.New("object key is not a string")
				}
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return jvalue{}, err
				}
				obj = setMember(obj, key, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return jvalue{}, err
			}
			return jvalue{kind: kindObject, obj: obj}, nil
		}
	}
	return jvalue{}, fmt.Errorf("unexpected token %v", tok)
}

func setMember(obj []jmember, key string, v jvalue) []jmember {
	for i := range obj {
		if obj[i].key == key {
			obj[i].val = v
			return obj
		}
	}
	return append(obj, jmember{key: key, val: v})
}

// member returns the value of key in an object value.
func (v jvalue) member(key string) (jvalue, bool) {
	if v.kind != kindObject {
		return jvalue{}, false
	}
	for _, m := range v.obj {
		if m.key == key {
			return m.val, true
		}
	}
	return jvalue{}, false
}

// withoutNulls removes null object members and null array items recursively, as the
// reference does before digesting a non-Data frame.
func (v jvalue) withoutNulls() jvalue {
	switch v.kind {
	case kindArray:
		out := make([]jvalue, 0, len(v.arr))
		for _, it := range v.arr {
			if it.kind != kindNull {
				out = append(out, it.withoutNulls())
			}
		}
		return jvalue{kind: kindArray, arr: out}
	case kindObject:
		out := make([]jmember, 0, len(v.obj))
		for _, m := range v.obj {
			if m.val.kind != kindNull {
				out = append(out, jmember{key: m.key, val: m.val.withoutNulls()})
			}
		}
		return jvalue{kind: kindObject, obj: out}
	}
	return v
}

func jstr(s string) jvalue { return jvalue{kind: kindString, s: s} }

// jstrOrNull maps the Go zero value to JSON null, which is how the reference renders an
// absent optional header.
func jstrOrNull(s string) jvalue {
	if s == "" {
		return jvalue{kind: kindNull}
	}
	return jstr(s)
}
