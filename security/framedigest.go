package security

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/internal/bufpool"
)

// PayloadDigest is the reference's Data payload digest (the `pd` member): secure_digest of the
// canonical JSON of the payload, or of "" when the payload is absent or null.
func PayloadDigest(payload json.RawMessage, style NumberStyle) (string, error) {
	if len(payload) == 0 || isJSONNull(payload) {
		return SecureDigest(""), nil
	}
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	c, err := AppendCanonicalJSON((*buf)[:0], payload, style)
	*buf = c
	if err != nil {
		return "", fmt.Errorf("payload digest: %w", err)
	}
	return SecureDigestBytes(c), nil
}

// FrameDigest is the digest a signature covers for a non-Data frame, computed from the frame
// as it is on the wire: secure_digest(canonical_json(frame without null members)). That is
// what the TS runtime computes, and what Python computes whenever the sender wrote the model
// defaults explicitly (our Signer makes sure it does, see normalizeFrame).
func FrameDigest(frame json.RawMessage) (string, error) {
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	var d [24]byte
	out, err := appendFrameDigest(d[:0], frame, buf)
	return string(out), err
}

// appendFrameDigest appends FrameDigest(frame) to dst, using scratch for the canonical form.
func appendFrameDigest(dst, frame []byte, scratch *[]byte) ([]byte, error) {
	c, err := appendEncoded((*scratch)[:0], frame, &frameDigestOpts)
	*scratch = c
	if err != nil {
		return dst, fmt.Errorf("frame digest: %w", err)
	}
	return appendSecureDigest(dst, c), nil
}

// ackFrames are the frames that extend DeliveryAck and therefore default ok to true.
var ackFrames = map[string]bool{
	envelope.TypeDeliveryAck: true, envelope.TypeNodeAttachAck: true, envelope.TypeAddressBindAck: true,
	envelope.TypeAddressUnbindAck: true, envelope.TypeCapabilityAdvertiseAck: true,
	envelope.TypeCapabilityWithdrawAck: true, envelope.TypeNodeHeartbeatAck: true, envelope.TypeSecureAccept: true,
}

// modelDefaults lists the members the Python models fill in when a sender omitted them; the
// Python verifier digests the frame with these present, the TS verifier digests the wire.
func modelDefaults(frameType string) []rawMember {
	var d []rawMember
	if ackFrames[frameType] {
		d = append(d, rawMember{"ok", json.RawMessage("true")})
	}
	switch frameType {
	case envelope.TypeSecureOpen:
		d = append(d, rawMember{"alg", quoteJSON("CHACHA20P1305")}, rawMember{"opts", json.RawMessage("0")})
	case envelope.TypeSecureAccept:
		d = append(d, rawMember{"alg", quoteJSON("CHACHA20P1305")})
	case envelope.TypeNodeAttach:
		d = append(d, rawMember{"originType", quoteJSON("downstream")})
	}
	return d
}

// normalizeFrame returns the frame as the Python model would dump it (for the members that
// matter in practice): missing defaults added, KeyAnnounce timestamps cut to milliseconds.
// changed is false when the wire form already is the model form.
func normalizeFrame(frame json.RawMessage) (out json.RawMessage, changed bool, err error) {
	if frameIsModelForm(frame) {
		return frame, false, nil
	}
	return normalizeFrameSlow(frame)
}

// normalizeFrameSlow is normalizeFrame without the fast path.
func normalizeFrameSlow(frame json.RawMessage) (out json.RawMessage, changed bool, err error) {
	obj, err := parseRawObject(frame)
	if err != nil {
		return nil, false, err
	}
	ft, err := obj.stringMember("type")
	if err != nil {
		return nil, false, err
	}
	for _, d := range modelDefaults(ft) {
		if v, ok := obj.get(d.key); !ok || isJSONNull(v) {
			obj.set(d.key, d.val)
			changed = true
		}
	}
	if ft == envelope.TypeKeyAnnounce {
		for _, k := range []string{"created", "expires"} {
			s, err := obj.stringMember(k)
			if err != nil || s == "" {
				continue
			}
			if ms, ok := toMillisZ(s); ok && ms != s {
				obj.set(k, quoteJSON(ms))
				changed = true
			}
		}
	}
	if !changed {
		return frame, false, nil
	}
	return obj.marshal(), true, nil
}

// frameIsModelForm is the allocation-free answer for the common case: true only when the frame
// parses, its type is a string (or absent), it is not a KeyAnnounce, and every model default
// is already present and non-null, so that normalizeFrame would return it unchanged.
func frameIsModelForm(frame []byte) bool {
	var typ []byte
	var have uint8 // bit i: member defaultNames[i] present and not null
	var keyBuf [32]byte
	sc := newObjectScanner(frame)
	for {
		key, val, ok, err := sc.next(keyBuf[:0])
		if err != nil {
			return false
		}
		if !ok {
			break
		}
		if string(key) == "type" {
			typ = val
			continue
		}
		for i, n := range defaultNames {
			if string(key) == n {
				if string(val) == "null" {
					have &^= 1 << i
				} else {
					have |= 1 << i
				}
			}
		}
	}
	var typeBuf [32]byte
	ft, err := stringValue(typeBuf[:0], typ)
	if err != nil || string(ft) == envelope.TypeKeyAnnounce {
		return false
	}
	var need uint8
	if ackFrames[string(ft)] {
		need |= 1 << 0
	}
	switch string(ft) {
	case envelope.TypeSecureOpen:
		need |= 1<<1 | 1<<2
	case envelope.TypeSecureAccept:
		need |= 1 << 1
	case envelope.TypeNodeAttach:
		need |= 1 << 3
	}
	return have&need == need
}

// defaultNames are the members modelDefaults may add, by bit position in frameIsModelForm.
var defaultNames = [...]string{"ok", "alg", "opts", "originType"}

// toMillisZ renders an RFC 3339 timestamp the way the reference serialises KeyAnnounce times.
func toMillisZ(s string) (string, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", false
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z"), true
}
