package stickiness

import (
	"bytes"
	"encoding/json"
)

// ExtractAFT returns the AFT a replica attached to an envelope's `meta`: the
// nested form meta.set.aft (what reference replicas write) or the flat key
// meta["set.aft"] (also accepted by reference sentinels). The nested form
// wins when both are present. Anything else — no meta, not an object, a
// non-string or empty token — yields ok=false; it never fails harder than
// that because meta is unsigned and untrusted.
func ExtractAFT(meta json.RawMessage) (string, bool) {
	// Most metas carry no AFT; skip the decoder for them (both key forms
	// contain the literal "aft"; peers do not \u-escape ASCII keys).
	if len(meta) == 0 || !bytes.Contains(meta, []byte("aft")) {
		return "", false
	}
	var m struct {
		Set  json.RawMessage `json:"set"`
		Flat json.RawMessage `json:"set.aft"`
	}
	if json.Unmarshal(meta, &m) != nil {
		return "", false
	}
	if len(m.Set) > 0 {
		var set struct {
			AFT json.RawMessage `json:"aft"`
		}
		if json.Unmarshal(m.Set, &set) == nil {
			if tok, ok := jsonString(set.AFT); ok {
				return tok, true
			}
		}
	}
	return jsonString(m.Flat)
}

func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil || s == "" {
		return "", false
	}
	return s, true
}
