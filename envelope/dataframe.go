package envelope

import (
	"bytes"
	"encoding/json"
)

// encodeData is EncodeFrame for the common Data frame, a payload without security fields:
// the bytes json.Marshal would give, without reflection or the second copy of the body. ok is
// false when the frame needs the general path (security fields set, or a payload that
// json.Marshal would HTML-escape or reject).
func encodeData(d *Data) (json.RawMessage, bool) {
	if d.Codec != "" || d.PD != "" || d.FID != "" || d.CID != "" || d.Nonce != "" {
		return nil, false
	}
	// json.Marshal escapes <, > and & (and U+2028/U+2029, which start with 0xE2) even inside
	// a RawMessage; json.Compact does not.
	for _, c := range d.Payload {
		if c == '<' || c == '>' || c == '&' || c == 0xe2 {
			return nil, false
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(d.Payload)+32))
	buf.WriteString(`{"type":"Data"`)
	if len(d.Payload) > 0 {
		buf.WriteString(`,"payload":`)
		if json.Compact(buf, d.Payload) != nil {
			return nil, false
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), true
}
