package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/fame-go/fame/internal/jsonscan"
)

// Version is the envelope version every peer sends.
const Version = "1.0"

// RType is the bitmask of responses a sender expects.
type RType int

const (
	RTypeNone   RType = 0
	RTypeAck    RType = 1
	RTypeReply  RType = 2
	RTypeStream RType = 4
)

// Has reports whether all bits of f are set.
func (r RType) Has(f RType) bool { return r&f == f }

// FlowFlags are the hop-by-hop flow-control bits.
type FlowFlags int

const (
	FlowSyn   FlowFlags = 1
	FlowAck   FlowFlags = 2 // credit update
	FlowReset FlowFlags = 4
	flowValid           = FlowSyn | FlowAck | FlowReset
)

// Envelope is one FAME message. Frame, Sec and Meta hold the exact bytes they arrived as, so
// that forwarding or re-encoding keeps what a signature covers; Extra keeps top-level keys this
// version does not know.
type Envelope struct {
	Version      string
	ID           string
	SID          string
	TraceID      string
	To           string
	ReplyTo      string
	Capabilities []string
	RType        RType
	CorrID       string
	FlowID       string
	SeqID        int64
	FlowFlags    FlowFlags
	TTL          *int64
	Priority     string
	Frame        json.RawMessage
	TS           string
	Sec          json.RawMessage
	AFT          string
	Meta         json.RawMessage
	Extra        map[string]json.RawMessage
}

// checkInput applies the limits every decoder shares.
func checkInput(b []byte) error {
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(b), MaxMessageSize)
	}
	if !utf8.Valid(b) {
		return ErrInvalidUTF8
	}
	return nil
}

// Decode parses one envelope. The frame must be an object with a string "type".
func Decode(b []byte) (*Envelope, error) {
	if err := checkInput(b); err != nil {
		return nil, err
	}
	i := jsonscan.SkipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, ErrNotObject
	}
	e := &Envelope{}
	var seen keySet
	var scratch Header // what ParseHeader would read; Decode only wants the checks
	end, err := eachMember(b, i, 0, func(m member) error {
		k := m.key // not a method on m: copying m by value stalls the hot path
		if m.keyEscaped {
			k = unescapeKey(m.key)
		}
		idx := topKey(k)
		if err := seen.addTop(k, idx); err != nil {
			return err
		}
		// The nested members the router reads get the same checks as in ParseHeader.
		var err error
		switch idx {
		case kFrame:
			err = parseFrameHeader(b, m.valStart, 1, &scratch)
		case kSec:
			err = parseSecHeader(b, m.valStart, 1, &scratch)
		case kMeta:
			err = checkMeta(b, m.valStart, 1)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		return e.setField(string(k), b[m.valStart:m.valEnd])
	})
	if err != nil {
		return nil, err
	}
	if jsonscan.SkipWS(b, end) != len(b) {
		return nil, syntaxErr(end, "trailing data after envelope")
	}
	if e.Frame == nil {
		return nil, ErrMissingFrame
	}
	return e, nil
}

func (e *Envelope) setField(k string, v []byte) error {
	var err error
	str := func(dst *string) {
		if isNull(v) {
			return
		}
		*dst, err = stringValue(v)
	}
	num := func() int64 {
		if isNull(v) {
			return 0
		}
		n, perr := intValue(v)
		if perr != nil {
			err = perr
		}
		return n
	}
	raw := func(dst *json.RawMessage) {
		if isNull(v) {
			return
		}
		*dst = json.RawMessage(v)
	}
	switch k {
	case "version":
		str(&e.Version)
	case "id":
		str(&e.ID)
	case "sid":
		str(&e.SID)
	case "traceId", "trace_id":
		str(&e.TraceID)
	case "to":
		str(&e.To)
	case "replyTo", "reply_to":
		str(&e.ReplyTo)
	case "capabilities":
		if !isNull(v) {
			if v[0] != '[' {
				err = ErrFieldType
			} else if uerr := json.Unmarshal(v, &e.Capabilities); uerr != nil {
				err = ErrFieldType
			}
		}
	case "rtype":
		e.RType = RType(num())
	case "corrId", "corr_id":
		str(&e.CorrID)
	case "flowId", "flow_id":
		str(&e.FlowID)
	case "seqId", "seq_id":
		e.SeqID = num()
	case "flowFlags", "flow_flags":
		f := FlowFlags(num())
		if err == nil && f&^flowValid != 0 {
			err = fmt.Errorf("%w: flowFlags %d has unknown bits", ErrFieldType, f)
		}
		e.FlowFlags = f
	case "ttl":
		if !isNull(v) {
			n := num()
			e.TTL = &n
		}
	case "priority":
		str(&e.Priority)
	case "frame":
		if v[0] != '{' {
			return fmt.Errorf("frame: %w", ErrFieldType)
		}
		e.Frame = json.RawMessage(v)
	case "ts":
		str(&e.TS)
	case "sec":
		if !isNull(v) && v[0] != '{' {
			return fmt.Errorf("sec: %w", ErrFieldType)
		}
		raw(&e.Sec)
	case "aft":
		str(&e.AFT)
	case "meta":
		if !isNull(v) && v[0] != '{' {
			return fmt.Errorf("meta: %w", ErrFieldType)
		}
		raw(&e.Meta)
	default:
		if e.Extra == nil {
			e.Extra = make(map[string]json.RawMessage)
		}
		e.Extra[k] = json.RawMessage(v)
	}
	if err != nil {
		return fmt.Errorf("field %q: %w", k, err)
	}
	return nil
}

func isNull(v []byte) bool { return len(v) == 4 && string(v) == "null" }

// FrameType returns frame.type, or "" when the frame is missing or has no type.
func (e *Envelope) FrameType() string {
	t, _ := frameTypeOf(e.Frame)
	return t
}

func frameTypeOf(frame []byte) (string, error) {
	if len(frame) == 0 {
		return "", ErrMissingFrame
	}
	var h Header
	if err := parseFrameHeader(frame, 0, 1, &h); err != nil {
		return "", err
	}
	return string(h.FrameType), nil
}

// Marshal encodes the envelope with camelCase keys in the reference's field order, omitting
// absent fields. seqId and flowFlags are always written, as every reference peer does.
func (e *Envelope) Marshal() ([]byte, error) {
	return e.AppendMarshal(make([]byte, 0, 256+len(e.Frame)+len(e.Sec)+len(e.Meta)))
}

// AppendMarshal appends the encoding of e to dst.
func (e *Envelope) AppendMarshal(dst []byte) ([]byte, error) {
	if len(e.Frame) == 0 {
		return nil, ErrMissingFrame
	}
	w := objWriter{buf: append(dst, '{')}
	v := e.Version
	if v == "" {
		v = Version
	}
	w.str("version", v)
	w.optStr("id", e.ID)
	w.optStr("sid", e.SID)
	w.optStr("traceId", e.TraceID)
	w.optStr("to", e.To)
	w.optStr("replyTo", e.ReplyTo)
	if e.Capabilities != nil {
		c, err := json.Marshal(e.Capabilities)
		if err != nil {
			return nil, err
		}
		w.raw("capabilities", c)
	}
	if e.RType != 0 {
		w.int("rtype", int64(e.RType))
	}
	w.optStr("corrId", e.CorrID)
	w.optStr("flowId", e.FlowID)
	w.int("seqId", e.SeqID)
	w.int("flowFlags", int64(e.FlowFlags))
	if e.TTL != nil {
		w.int("ttl", *e.TTL)
	}
	w.optStr("priority", e.Priority)
	w.raw("frame", e.Frame)
	w.optStr("ts", e.TS)
	if len(e.Sec) > 0 {
		w.raw("sec", e.Sec)
	}
	w.optStr("aft", e.AFT)
	if len(e.Meta) > 0 {
		w.raw("meta", e.Meta)
	}
	if len(e.Extra) > 0 {
		keys := make([]string, 0, len(e.Extra))
		for k := range e.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w.raw(k, e.Extra[k])
		}
	}
	return append(w.buf, '}'), nil
}

// objWriter appends the members of one JSON object.
type objWriter struct {
	buf []byte
	n   int
}

func (w *objWriter) key(k string) {
	if w.n > 0 {
		w.buf = append(w.buf, ',')
	}
	w.n++
	w.buf = appendJSONString(w.buf, k)
	w.buf = append(w.buf, ':')
}

func (w *objWriter) str(k, v string) {
	w.key(k)
	w.buf = appendJSONString(w.buf, v)
}

func (w *objWriter) optStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *objWriter) int(k string, v int64) {
	w.key(k)
	w.buf = strconv.AppendInt(w.buf, v, 10)
}

func (w *objWriter) raw(k string, v []byte) {
	w.key(k)
	w.buf = append(w.buf, v...)
}

// appendJSONString appends s as a JSON string, escaping as encoding/json does (without HTML
// escaping, which the reference peers do not do either).
func appendJSONString(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	var bb bytes.Buffer
	enc := json.NewEncoder(&bb)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a Go string always encodes
	return append(dst, bytes.TrimRight(bb.Bytes(), "\n")...)
}
