package envelope

import (
	"bytes"
	"unicode/utf8"

	"github.com/fame-go/fame/internal/jsonscan"
)

// parseData is ParseFrame for the common Data frame without reflection: one pass of the
// validating scanner over the frame. ok is false whenever the result could differ from
// json.Unmarshal's (a key other than the exact field names, which json would match case-
// insensitively; a null or non-string where a string goes; invalid UTF-8, which json
// replaces; a null payload), and the caller then takes the general path.
func parseData(raw []byte) (*Data, bool) {
	d := &Data{}
	fallback := false
	end, err := eachMember(raw, 0, 1, func(m member) error {
		if m.keyEscaped {
			fallback = true
			return nil
		}
		v := raw[m.valStart:m.valEnd]
		var dst *string
		switch string(m.key) {
		case "type":
			return nil // frameTypeOf checked it; Data has no type field
		case "payload":
			if bytes.Equal(v, []byte("null")) {
				fallback = true
				return nil
			}
			d.Payload = append(d.Payload[:0:0], v...)
			return nil
		case "codec":
			dst = &d.Codec
		case "pd":
			dst = &d.PD
		case "fid":
			dst = &d.FID
		case "cid":
			dst = &d.CID
		case "nonce":
			dst = &d.Nonce
		default:
			fallback = true
			return nil
		}
		if len(v) == 0 || v[0] != '"' || !utf8.Valid(v) {
			fallback = true
			return nil
		}
		s, err := stringValue(v)
		if err != nil {
			fallback = true
			return nil
		}
		*dst = s
		return nil
	})
	if err != nil || fallback || jsonscan.SkipWS(raw, end) != len(raw) {
		return nil, false
	}
	return d, true
}
