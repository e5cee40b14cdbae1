package envelope

import (
	"fmt"
	"strconv"
)

// Header is what a router needs from an envelope, read without decoding the payload. The byte
// slices alias the message passed to ParseHeader (or a fresh copy when the wire form had JSON
// escapes), so a Header is valid only as long as that message is.
type Header struct {
	ID        []byte
	SID       []byte
	TraceID   []byte
	To        []byte
	ReplyTo   []byte
	CorrID    []byte
	FlowID    []byte
	AFT       []byte
	RType     RType
	SeqID     int64
	FlowFlags FlowFlags

	FrameType    []byte // frame.type
	FrameCID     []byte // frame.cid (SecureOpen/Accept/Close, channel Data)
	FrameAddress []byte // frame.address (KeyRequest routing)
	FrameFlowID  []byte // frame.flowId (CreditUpdate)
	FrameCredits int64  // frame.credits (CreditUpdate)
	EncKID       []byte // sec.enc.kid: the channel id of channel-encrypted envelopes
	HasSig       bool   // sec.sig present
	Meta         []byte // raw meta object (AFT learning reads meta.set.aft), nil if absent

	seqSpan   [2]int // value span of seqId in the message, {0,0} when absent
	flagsSpan [2]int
	objStart  int
}

// ParseHeader reads the routing header of msg into h. It validates the whole message as JSON
// (size, UTF-8, syntax, depth) but builds nothing but h. h is reset first.
func ParseHeader(msg []byte, h *Header) error {
	*h = Header{}
	if err := checkInput(msg); err != nil {
		return err
	}
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return ErrNotObject
	}
	h.objStart = i
	hasFrame := false
	end, err := eachMember(msg, i, 0, func(m member) error {
		v := msg[m.valStart:m.valEnd]
		var err error
		switch string(m.key) {
		case "id":
			h.ID, err = strBytes(v)
		case "sid":
			h.SID, err = strBytes(v)
		case "traceId", "trace_id":
			h.TraceID, err = strBytes(v)
		case "to":
			h.To, err = strBytes(v)
		case "replyTo", "reply_to":
			h.ReplyTo, err = strBytes(v)
		case "corrId", "corr_id":
			h.CorrID, err = strBytes(v)
		case "flowId", "flow_id":
			h.FlowID, err = strBytes(v)
		case "aft":
			h.AFT, err = strBytes(v)
		case "rtype":
			var n int64
			n, err = optInt(v)
			h.RType = RType(n)
		case "seqId", "seq_id":
			h.SeqID, err = optInt(v)
			h.seqSpan = [2]int{m.valStart, m.valEnd}
		case "flowFlags", "flow_flags":
			var n int64
			n, err = optInt(v)
			h.FlowFlags = FlowFlags(n)
			if err == nil && h.FlowFlags&^flowValid != 0 {
				err = ErrFieldType
			}
			h.flagsSpan = [2]int{m.valStart, m.valEnd}
		case "frame":
			hasFrame = true
			err = h.parseFrame(msg, m.valStart)
		case "sec":
			if v[0] == '{' {
				err = h.parseSec(msg, m.valStart)
			}
		case "meta":
			if v[0] == '{' {
				h.Meta = v
			}
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", m.key, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if skipWS(msg, end) != len(msg) {
		return syntaxErr(end, "trailing data after envelope")
	}
	if !hasFrame {
		return ErrMissingFrame
	}
	if len(h.FrameType) == 0 {
		return ErrMissingFrameType
	}
	return nil
}

func (h *Header) parseFrame(msg []byte, at int) error {
	if msg[at] != '{' {
		return ErrFieldType
	}
	_, err := eachMember(msg, at, 1, func(m member) error {
		v := msg[m.valStart:m.valEnd]
		var err error
		switch string(m.key) {
		case "type":
			h.FrameType, err = strBytes(v)
		case "cid":
			h.FrameCID, err = strBytes(v)
		case "address":
			h.FrameAddress, err = strBytes(v)
		case "flowId":
			h.FrameFlowID, err = strBytes(v)
		case "credits":
			h.FrameCredits, err = optInt(v)
		}
		return err
	})
	return err
}

func (h *Header) parseSec(msg []byte, at int) error {
	_, err := eachMember(msg, at, 1, func(m member) error {
		switch string(m.key) {
		case "sig":
			h.HasSig = msg[m.valStart] == '{'
		case "enc":
			if msg[m.valStart] != '{' {
				return nil
			}
			_, err := eachMember(msg, m.valStart, 2, func(k member) error {
				if string(k.key) == "kid" {
					var err error
					h.EncKID, err = strBytes(msg[k.valStart:k.valEnd])
					return err
				}
				return nil
			})
			return err
		}
		return nil
	})
	return err
}

// strBytes returns the contents of a JSON string value, unescaped. null gives nil.
func strBytes(v []byte) ([]byte, error) {
	if isNull(v) {
		return nil, nil
	}
	if len(v) < 2 || v[0] != '"' {
		return nil, ErrFieldType
	}
	body := v[1 : len(v)-1]
	for _, c := range body {
		if c == '\\' {
			s, err := stringValue(v)
			return []byte(s), err
		}
	}
	return body, nil
}

func optInt(v []byte) (int64, error) {
	if isNull(v) {
		return 0, nil
	}
	return intValue(v)
}

// Restamp appends to dst a copy of msg (whose header h was parsed from) with seqId and
// flowFlags replaced. Every other byte is kept, so signatures over the envelope stay valid.
func Restamp(dst, msg []byte, h *Header, seq int64, flags FlowFlags) []byte {
	type edit struct {
		span [2]int
		val  int64
	}
	a := edit{h.seqSpan, seq}
	b := edit{h.flagsSpan, int64(flags)}
	if a.span[1] == 0 || b.span[1] == 0 {
		// One of them is missing on the wire: write both at the front of the object and drop
		// the one that was present, so the result has exactly one of each.
		dst = append(dst, msg[:h.objStart+1]...)
		dst = append(dst, `"seqId":`...)
		dst = strconv.AppendInt(dst, seq, 10)
		dst = append(dst, `,"flowFlags":`...)
		dst = strconv.AppendInt(dst, int64(flags), 10)
		rest := msg[h.objStart+1:]
		present := a
		if a.span[1] == 0 {
			present = b
		}
		if present.span[1] == 0 {
			if len(skipLeadingWS(rest)) > 0 && skipLeadingWS(rest)[0] != '}' {
				dst = append(dst, ',')
			}
			return append(dst, rest...)
		}
		return appendWithoutMember(append(dst, ','), msg, h.objStart+1, present.span)
	}
	if a.span[0] > b.span[0] {
		a, b = b, a
	}
	dst = append(dst, msg[:a.span[0]]...)
	dst = strconv.AppendInt(dst, a.val, 10)
	dst = append(dst, msg[a.span[1]:b.span[0]]...)
	dst = strconv.AppendInt(dst, b.val, 10)
	return append(dst, msg[b.span[1]:]...)
}

func skipLeadingWS(b []byte) []byte { return b[skipWS(b, 0):] }

// appendWithoutMember appends msg[from:] to dst leaving out the member whose value span is
// span (its key, colon, value and one adjacent comma).
func appendWithoutMember(dst, msg []byte, from int, span [2]int) []byte {
	// Find the opening quote of the key: walk back over ':' and the key string.
	k := span[0] - 1
	for k > from && msg[k] != ':' {
		k--
	}
	k--
	for k > from && isWS(msg[k]) {
		k--
	}
	// msg[k] is the closing quote of the key; find its opening quote.
	k--
	for k > from && !(msg[k] == '"' && msg[k-1] != '\\') {
		k--
	}
	end := span[1]
	j := skipWS(msg, end)
	if j < len(msg) && msg[j] == ',' {
		end = j + 1
	} else {
		// Last member: remove the comma before it instead.
		p := k - 1
		for p >= from && isWS(msg[p]) {
			p--
		}
		if p >= from && msg[p] == ',' {
			k = p
		}
	}
	dst = append(dst, msg[from:k]...)
	return append(dst, msg[end:]...)
}
