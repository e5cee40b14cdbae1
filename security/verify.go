package security

import (
	"crypto/ed25519"
	"fmt"

	"github.com/fame-go/fame/envelope"
)

// Verify checks env's signature with pub as a final recipient does: for Data frames the
// payload digest is recomputed and must equal pd (call it after decryption). The signer sid
// in the signed bytes is env.SID; KeyStore.Verify uses the sid recorded with the key instead,
// as the reference does.
func Verify(env *envelope.Envelope, pub ed25519.PublicKey) error {
	return verifyAs(env, pub, env.SID, false)
}

// VerifyShallow is the check a forwarding node (the sentinel) does: for Data frames the
// advertised pd is trusted instead of recomputed, so it also works on encrypted payloads.
func VerifyShallow(env *envelope.Envelope, pub ed25519.PublicKey) error {
	return verifyAs(env, pub, env.SID, true)
}

func verifyAs(env *envelope.Envelope, pub ed25519.PublicKey, sid string, trustPD bool) error {
	sec, err := ParseSec(env.Sec)
	if err != nil {
		return err
	}
	if sec == nil || sec.Sig == nil {
		return ErrUnsigned
	}
	sig, err := decodeSigVal(sec.Sig.Val)
	if err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key has %d bytes", ErrBadJWK, len(pub))
	}
	if sid == "" {
		return fmt.Errorf("%w: no signer sid", ErrBadSignature)
	}
	digests, err := verifyDigests(env.Frame, trustPD)
	if err != nil {
		return err
	}
	var buf [512]byte
	for _, d := range digests {
		tbs, _ := appendTBS(buf[:0], sid, env, d)
		if ed25519.Verify(pub, tbs, sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: kid %s", ErrBadSignature, sec.Sig.Kid)
}

// verifyDigests lists the frame digests a genuine signer may have used. Data: pd (checked
// against the payload unless trusted; the payload may have been digested with Python or JS
// number printing). Other frames: the wire form (TS signers, and our Signer) and, if it
// differs, the Python model form with defaults filled in (Python signers).
func verifyDigests(frame []byte, trustPD bool) ([]string, error) {
	obj, err := parseRawObject(frame)
	if err != nil {
		return nil, fmt.Errorf("%w: frame: %v", ErrBadSignature, err)
	}
	ft, err := obj.stringMember("type")
	if err != nil {
		return nil, fmt.Errorf("%w: frame type: %v", ErrBadSignature, err)
	}
	if ft == envelope.TypeData {
		pd, err := obj.stringMember("pd")
		if err != nil || pd == "" {
			return nil, fmt.Errorf("%w: Data frame without pd", ErrBadSignature)
		}
		if trustPD {
			return []string{pd}, nil
		}
		payload, _ := obj.get("payload")
		for _, style := range []NumberStyle{PythonNumbers, JSNumbers} {
			d, err := PayloadDigest(payload, style)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
			}
			if d == pd {
				return []string{pd}, nil
			}
		}
		return nil, fmt.Errorf("%w: payload digest does not match pd", ErrBadSignature)
	}
	wire, err := FrameDigest(frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	out := []string{wire}
	if norm, changed, err := normalizeFrame(frame); err == nil && changed {
		if d, err := FrameDigest(norm); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}
