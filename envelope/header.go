package envelope

import (
	"fmt"
	"strconv"

	"github.com/fame-go/fame/internal/jsonscan"
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
// (size, UTF-8, syntax, depth) and every top-level member as Decode does, refuses what Decode
// refuses (duplicate keys included, see keys.go), but builds nothing but h. h is reset first.
func ParseHeader(msg []byte, h *Header) error {
	*h = Header{}
	if err := checkInput(msg); err != nil {
		return err
	}
	i := jsonscan.SkipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return ErrNotObject
	}
	h.objStart = i
	var seen keySet
	end, err := eachMember(msg, i, 0, func(m member) error {
		k := m.key // not a method on m: copying m by value stalls the hot path
		if m.keyEscaped {
			k = unescapeKey(m.key)
		}
		idx := topKey(k)
		if err := seen.addTop(k, idx); err != nil {
			return err
		}
		v := msg[m.valStart:m.valEnd]
		var err error
		switch idx {
		case kID:
			h.ID, err = strVal(v, m.valEscaped)
		case kSID:
			h.SID, err = strVal(v, m.valEscaped)
		case kTraceID:
			h.TraceID, err = strVal(v, m.valEscaped)
		case kTo:
			h.To, err = strVal(v, m.valEscaped)
		case kReplyTo:
			h.ReplyTo, err = strVal(v, m.valEscaped)
		case kCorrID:
			h.CorrID, err = strVal(v, m.valEscaped)
		case kFlowID:
			h.FlowID, err = strVal(v, m.valEscaped)
		case kAFT:
			h.AFT, err = strVal(v, m.valEscaped)
		case kRType:
			var n int64
			n, err = optInt(v)
			h.RType = RType(n)
		case kSeqID:
			h.SeqID, err = optInt(v)
			h.seqSpan = [2]int{m.valStart, m.valEnd}
		case kFlowFlags:
			var n int64
			n, err = optInt(v)
			h.FlowFlags = FlowFlags(n)
			if err == nil && h.FlowFlags&^flowValid != 0 {
				err = ErrFieldType
			}
			h.flagsSpan = [2]int{m.valStart, m.valEnd}
		case kFrame:
			err = parseFrameHeader(msg, m.valStart, 1, h)
		case kSec:
			err = parseSecHeader(msg, m.valStart, 1, h)
		case kMeta:
			if err = checkMeta(msg, m.valStart, 1); err == nil && v[0] == '{' {
				h.Meta = v
			}
		case kVersion, kPriority, kTS:
			_, err = strBytesNoCopy(v)
		case kTTL:
			_, err = optInt(v)
		case kCapabilities:
			err = checkStringArray(msg, m.valStart)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if jsonscan.SkipWS(msg, end) != len(msg) {
		return syntaxErr(end, "trailing data after envelope")
	}
	if seen.known&(1<<kFrame) == 0 {
		return ErrMissingFrame
	}
	return nil
}

// strBytesNoCopy checks that v is a JSON string or null, as strBytes would, without unescaping.
func strBytesNoCopy(v []byte) ([]byte, error) {
	if isNull(v) {
		return nil, nil
	}
	if len(v) < 2 || v[0] != '"' {
		return nil, ErrFieldType
	}
	return v, nil
}

// checkStringArray accepts null or an array of strings and nulls: what json.Unmarshal into a
// []string (Decode's capabilities) accepts.
func checkStringArray(b []byte, at int) error {
	if b[at] == 'n' {
		return nil
	}
	if b[at] != '[' {
		return ErrFieldType
	}
	i := jsonscan.SkipWS(b, at+1)
	if b[i] == ']' {
		return nil
	}
	for {
		if b[i] != '"' && b[i] != 'n' {
			return ErrFieldType
		}
		var err error
		if i, err = skipValue(b, i, 1); err != nil {
			return err
		}
		i = jsonscan.SkipWS(b, i)
		if b[i] == ']' {
			return nil
		}
		i = jsonscan.SkipWS(b, i+1) // ',' (the scanner validated the array)
	}
}

// strBytes returns the contents of a JSON string value, unescaped. null gives nil.
func strBytes(v []byte) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' {
		return strVal(v, false)
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' {
			return strVal(v, true)
		}
	}
	return strVal(v, false)
}

// strVal is strBytes for a member value whose escapes the scanner already reported.
func strVal(v []byte, escaped bool) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' {
		if isNull(v) {
			return nil, nil
		}
		return nil, ErrFieldType
	}
	if escaped {
		s, err := stringValue(v)
		return []byte(s), err
	}
	return v[1 : len(v)-1], nil
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

func skipLeadingWS(b []byte) []byte { return b[jsonscan.SkipWS(b, 0):] }

// appendWithoutMember appends msg[from:] to dst leaving out the member whose value span is
// span (its key, colon, value and one adjacent comma).
func appendWithoutMember(dst, msg []byte, from int, span [2]int) []byte {
	// Find the opening quote of the key: walk back over ':' and the key string.
	k := span[0] - 1
	for k > from && msg[k] != ':' {
		k--
	}
	k--
	for k > from && jsonscan.IsWS(msg[k]) {
		k--
	}
	// msg[k] is the closing quote of the key; find its opening quote.
	k--
	for k > from && !(msg[k] == '"' && msg[k-1] != '\\') {
		k--
	}
	end := span[1]
	j := jsonscan.SkipWS(msg, end)
	if j < len(msg) && msg[j] == ',' {
		end = j + 1
	} else {
		// Last member: remove the comma before it instead.
		p := k - 1
		for p >= from && jsonscan.IsWS(msg[p]) {
			p--
		}
		if p >= from && msg[p] == ',' {
			k = p
		}
	}
	dst = append(dst, msg[from:k]...)
	return append(dst, msg[end:]...)
}
