package security

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// rawMember is one member of a JSON object with its value kept as the exact bytes received,
// so that a frame can gain or replace a member (pd, payload, codec) without re-encoding the
// members a peer may have digested.
type rawMember struct {
	key string
	val json.RawMessage
}

type rawObject []rawMember

// parseRawObject splits a JSON object into members; values alias raw.
func parseRawObject(raw []byte) (rawObject, error) {
	var obj rawObject
	var keyBuf [64]byte
	sc := newObjectScanner(raw)
	for {
		key, val, ok, err := sc.next(keyBuf[:0])
		if err != nil {
			return nil, err
		}
		if !ok {
			return obj, nil
		}
		obj.set(string(key), val)
	}
}

func (o rawObject) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.val, true
		}
	}
	return nil, false
}

// set replaces key in place or appends it, so existing members keep their order.
func (o *rawObject) set(key string, val json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].val = val
			return
		}
	}
	*o = append(*o, rawMember{key: key, val: val})
}

func (o rawObject) marshal() []byte {
	n := 2
	for _, m := range o {
		n += len(m.key) + len(m.val) + 4
	}
	dst := make([]byte, 0, n)
	dst = append(dst, '{')
	for i, m := range o {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, m.key, false)
		dst = append(dst, ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}')
}

// stringMember decodes a string member; absent or null gives "".
func (o rawObject) stringMember(key string) (string, error) {
	v, _ := o.get(key)
	b, err := stringValue(nil, v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return string(b), nil
}

func isJSONNull(v []byte) bool { return string(bytes.TrimSpace(v)) == "null" }

func quoteJSON(s string) json.RawMessage { return appendJSONString(nil, s, false) }
