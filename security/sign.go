package security

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fame-go/fame/envelope"
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
	sec, err := ParseSec(env.Sec)
	if err != nil {
		return err
	}
	digest, frame, err := signingDigest(env.Frame)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	tbs, err := appendTBS(nil, env.SID, env, digest)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	sig := &envelope.Signature{Kid: s.Kid, Val: base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.Key, tbs))}
	if !s.OmitAlg {
		sig.Alg = SigAlgEdDSA
	}
	if sec == nil {
		sec = &envelope.Sec{}
	}
	sec.Sig = sig
	env.Frame = frame
	return setSec(env, sec)
}

// signingDigest returns the frame digest to sign and the (possibly completed) frame bytes.
func signingDigest(frame json.RawMessage) (string, json.RawMessage, error) {
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
	version := env.Version
	if version == "" {
		version = envelope.Version // the Python model fills the default before signing
	}
	// The immutable headers, canonical: members already in sorted key order.
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
	dst = append(dst, '}', usSeparatorByte)
	return append(dst, digest...), nil
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

func decodeSigVal(val string) ([]byte, error) {
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(val, "="))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: sig val is not a base64url Ed25519 signature", ErrBadSignature)
	}
	return sig, nil
}
