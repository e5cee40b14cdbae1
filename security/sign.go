package security

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/internal/bufpool"
)

// Signer signs envelopes a node originates (overlay and strict-overlay).
type Signer struct {
	Key ed25519.PrivateKey
	Kid string
	// OmitAlg leaves sec.sig.alg out, as the Python reference does; the TS runtime writes
	// "EdDSA". Verifiers on both sides ignore the member.
	OmitAlg bool
}

// Sign computes the reference signature over env and stores it in sec.sig, keeping an
// existing sec.enc. env.SID must be set (it is the first TBS component). For a Data frame
// without pd the payload digest is added to the frame first; other frames get the Python
// model's default members written out (e.g. SecureOpen alg/opts) so that Python verifiers,
// which digest the model form, and TS verifiers, which digest the wire form, agree.
// Sign before encrypting: pd is the digest of the plaintext.
func (s *Signer) Sign(env *envelope.Envelope) error {
	if len(s.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sign: %w: private key has %d bytes", ErrBadJWK, len(s.Key))
	}
	if env.SID == "" {
		return ErrMissingSID
	}
	var sec *envelope.Sec
	if len(env.Sec) > 0 {
		var err error
		if sec, err = ParseSec(env.Sec); err != nil {
			return err
		}
	}
	digest, frame, err := signingDigest(env.Frame)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	buf := bufpool.Get()
	tbs, _ := appendTBS((*buf)[:0], env.SID, env, digest)
	*buf = tbs
	val := base64.RawURLEncoding.EncodeToString(edSign(s.Key, tbs))
	bufpool.Put(buf)
	env.Frame = frame
	if sec == nil && plainSecText(s.Kid) {
		// The usual case (sign before encrypting): write the header json.Marshal would.
		b := make([]byte, 0, len(s.Kid)+len(val)+48)
		b = append(b, `{"sig":{"kid":"`...)
		b = append(b, s.Kid...)
		b = append(b, `","val":"`...)
		b = append(b, val...)
		if !s.OmitAlg {
			b = append(b, `","alg":"`+SigAlgEdDSA...)
		}
		env.Sec = append(b, `"}}`...)
		return nil
	}
	sig := &envelope.Signature{Kid: s.Kid, Val: val}
	if !s.OmitAlg {
		sig.Alg = SigAlgEdDSA
	}
	if sec == nil {
		sec = &envelope.Sec{}
	}
	sec.Sig = sig
	return setSec(env, sec)
}

// plainSecText reports whether json.Marshal writes s verbatim between quotes: non-empty
// printable ASCII without the characters it escapes (", \ and its HTML-safe <, >, &).
func plainSecText(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// signingDigest returns the frame digest to sign and the (possibly completed) frame bytes.
func signingDigest(frame json.RawMessage) (string, json.RawMessage, error) {
	if pd, out, ok, err := signingDigestData(frame); ok {
		return pd, out, err
	}
	return signingDigestSlow(frame)
}

// maxFastMembers bounds the Data frames signingDigestData handles (duplicate keys are
// detected among these); larger frames take the general path.
const maxFastMembers = 8

// signingDigestData is signingDigestSlow for the usual Data frame (every signed RPC request
// and response), without building a member list: one pass finds type, payload and pd, and
// when pd must be added a second pass writes the frame exactly as rawObject.marshal would
// (members in order, keys re-encoded, no whitespace, pd last or in place of an empty pd).
// ok is false, and nothing was decided, for anything else: another frame type, a malformed
// frame, duplicate keys (set's last-value-wins), more than maxFastMembers members.
func signingDigestData(frame json.RawMessage) (pd string, out json.RawMessage, ok bool, err error) {
	var keyBuf [64]byte
	var seen [maxFastMembers][]byte // decoded keys, copied into arena
	var arena [256]byte
	used, n := 0, 0
	var typ, payload, pdRaw []byte
	pdAt := -1
	sc := newObjectScanner(frame)
	for {
		key, val, more, serr := sc.next(keyBuf[:0])
		if serr != nil || n == maxFastMembers && more {
			return "", nil, false, nil
		}
		if !more {
			break
		}
		for _, k := range seen[:n] {
			if string(k) == string(key) {
				return "", nil, false, nil
			}
		}
		if used+len(key) > len(arena) {
			return "", nil, false, nil
		}
		seen[n] = append(arena[used:used], key...)
		used += len(key)
		switch string(key) {
		case "type":
			typ = val
		case "payload":
			payload = val
		case "pd":
			pdRaw, pdAt = val, n
		}
		n++
	}
	var typeBuf [16]byte
	if ft, terr := stringValue(typeBuf[:0], typ); terr != nil || string(ft) != envelope.TypeData {
		return "", nil, false, nil
	}
	if pd, err = PayloadDigest(payload, PythonNumbers); err != nil {
		return "", nil, true, err
	}
	var curBuf [32]byte
	if cur, cerr := stringValue(curBuf[:0], pdRaw); cerr == nil && len(cur) > 0 {
		return pd, frame, true, nil
	}
	out = make([]byte, 0, len(frame)+len(pd)+10)
	out = append(out, '{')
	sc = newObjectScanner(frame)
	for i := 0; ; i++ {
		key, val, more, _ := sc.next(keyBuf[:0]) // the first pass read the same bytes
		if !more {
			break
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, string(key), false)
		out = append(out, ':')
		if i == pdAt {
			out = appendJSONString(out, pd, false)
		} else {
			out = append(out, val...)
		}
	}
	if pdAt < 0 {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `"pd":`...)
		out = appendJSONString(out, pd, false)
	}
	return pd, append(out, '}'), true, nil
}

// signingDigestSlow is signingDigest for every frame: members split out, pd set, re-marshalled.
func signingDigestSlow(frame json.RawMessage) (string, json.RawMessage, error) {
	obj, err := parseRawObject(frame)
	if err != nil {
		return "", nil, fmt.Errorf("frame: %w", err)
	}
	ft, err := obj.stringMember("type")
	if err != nil {
		return "", nil, err
	}
	if ft != envelope.TypeData {
		norm, _, err := normalizeFrame(frame)
		if err != nil {
			return "", nil, err
		}
		d, err := FrameDigest(norm)
		return d, norm, err
	}
	payload, _ := obj.get("payload")
	pd, err := PayloadDigest(payload, PythonNumbers)
	if err != nil {
		return "", nil, err
	}
	if cur, err := obj.stringMember("pd"); err != nil || cur == "" {
		obj.set("pd", quoteJSON(pd))
		frame = obj.marshal()
	}
	return pd, frame, nil
}

// appendTBS builds the signed bytes: sid US canonical(immutable headers) US frame digest.
func appendTBS(dst []byte, sid string, env *envelope.Envelope, digest string) ([]byte, error) {
	return append(appendTBSHeaders(dst, sid, env), digest...), nil
}

// appendTBSHeaders appends the TBS up to and including the second separator. The immutable
// headers are written in canonical form directly: members already in sorted key order.
func appendTBSHeaders(dst []byte, sid string, env *envelope.Envelope) []byte {
	version := env.Version
	if version == "" {
		version = envelope.Version // the Python model fills the default before signing
	}
	dst = append(dst, sid...)
	dst = append(dst, usSeparatorByte)
	dst = append(dst, `{"capabilities":`...)
	if env.Capabilities == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, c := range env.Capabilities {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, c, false)
		}
		dst = append(dst, ']')
	}
	dst = appendHeader(dst, `,"corr_id":`, env.CorrID)
	dst = appendHeader(dst, `,"id":`, env.ID)
	dst = appendHeader(dst, `,"reply_to":`, env.ReplyTo)
	dst = appendHeader(dst, `,"sid":`, env.SID)
	dst = appendHeader(dst, `,"to":`, env.To)
	dst = appendHeader(dst, `,"trace_id":`, env.TraceID)
	dst = appendHeader(dst, `,"version":`, version)
	return append(dst, '}', usSeparatorByte)
}

// appendHeader writes one TBS header member; the Go zero value is JSON null, which is how the
// reference renders an absent optional header.
func appendHeader(dst []byte, prefix, val string) []byte {
	dst = append(dst, prefix...)
	if val == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, val, false)
}

// TBS returns the exact bytes the reference signs for env with the given signer sid and
// frame digest; exposed for diagnostics and tests.
func TBS(sid string, env *envelope.Envelope, digest string) []byte {
	b, _ := appendTBS(nil, sid, env, digest)
	return b
}

// decodeSigValBytes decodes a signature into buf without allocating; unusual spellings (line
// breaks, which the base64 decoder skips) take the general path.
func decodeSigValBytes(buf *[ed25519.SignatureSize]byte, val []byte) ([]byte, error) {
	for len(val) > 0 && val[len(val)-1] == '=' {
		val = val[:len(val)-1]
	}
	if len(val) != base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize) {
		return decodeSigVal(string(val))
	}
	if n, err := base64.RawURLEncoding.Decode(buf[:], val); err != nil || n != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: sig val is not a base64url Ed25519 signature", ErrBadSignature)
	}
	return buf[:], nil
}

func decodeSigVal(val string) ([]byte, error) {
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(val, "="))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: sig val is not a base64url Ed25519 signature", ErrBadSignature)
	}
	return sig, nil
}
