package security

import (
	"crypto/ed25519"
	"fmt"

	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/internal/bufpool"
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
	sec, err := viewSec(env.Sec)
	if err != nil {
		return err
	}
	return verifyView(env, verifyKey{pub: pub}, sid, trustPD, sec)
}

// verifyView is verifyAs with the sec header already read (KeyStore.Verify reads it once to
// find the key).
func verifyView(env *envelope.Envelope, key verifyKey, sid string, trustPD bool, sec secView) error {
	if !sec.hasSig {
		return ErrUnsigned
	}
	var sigBuf [ed25519.SignatureSize]byte
	sig, err := decodeSigValBytes(&sigBuf, sec.val)
	if err != nil {
		return err
	}
	if len(key.pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key has %d bytes", ErrBadJWK, len(key.pub))
	}
	if sid == "" {
		return fmt.Errorf("%w: no signer sid", ErrBadSignature)
	}
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	if pd, isData, err := dataFramePD(env.Frame, (*buf)[:0]); err != nil {
		return err
	} else if isData {
		// The TBS goes after pd in the same buffer.
		tbsStart := len(pd)
		if !trustPD {
			payloadMatches, err := payloadMatchesPD(env.Frame, pd)
			if err != nil {
				return err
			}
			if !payloadMatches {
				return fmt.Errorf("%w: payload digest does not match pd", ErrBadSignature)
			}
		}
		tbs := appendTBSHeaders(pd, sid, env)
		tbs = append(tbs, pd...)
		*buf = tbs
		if edVerify(key, tbs[tbsStart:], sig) {
			return nil
		}
		return fmt.Errorf("%w: kid %s", ErrBadSignature, sec.kid)
	}
	// Other frames: the wire form's digest (TS signers and ours), then, if the Python model
	// form differs, its digest (Python signers). No pd, so trustPD does not matter.
	var wire [24]byte
	d, err := appendFrameDigest(wire[:0], env.Frame, buf)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	tbs := appendTBSHeaders((*buf)[:0], sid, env)
	tbs = append(tbs, d...)
	*buf = tbs
	if edVerify(key, tbs, sig) {
		return nil
	}
	if norm, changed, err := normalizeFrame(env.Frame); err == nil && changed {
		if nd, err := FrameDigest(norm); err == nil {
			tbs = append(appendTBSHeaders((*buf)[:0], sid, env), nd...)
			*buf = tbs
			if edVerify(key, tbs, sig) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: kid %s", ErrBadSignature, sec.kid)
}

// dataFramePD scans the frame for type and pd without building anything. For a Data frame it
// returns pd appended to dst (an error if pd is missing); for other frames isData is false.
// Its errors are the ones verification reports for a malformed frame.
func dataFramePD(frame, dst []byte) (pd []byte, isData bool, err error) {
	var typ, pdRaw []byte
	var keyBuf [32]byte
	sc := newObjectScanner(frame)
	for {
		key, val, ok, err := sc.next(keyBuf[:0])
		if err != nil {
			return nil, false, fmt.Errorf("%w: frame: %v", ErrBadSignature, err)
		}
		if !ok {
			break
		}
		switch string(key) {
		case "type":
			typ = val
		case "pd":
			pdRaw = val
		}
	}
	var typeBuf [16]byte
	ft, err := stringValue(typeBuf[:0], typ)
	if err != nil {
		return nil, false, fmt.Errorf("%w: frame type: type: %v", ErrBadSignature, err)
	}
	if string(ft) != envelope.TypeData {
		return nil, false, nil
	}
	pd, err = stringValue(dst, pdRaw)
	if err != nil || len(pd) == 0 {
		return nil, true, fmt.Errorf("%w: Data frame without pd", ErrBadSignature)
	}
	return pd, true, nil
}

// payloadMatchesPD recomputes the payload digest (Python number printing, then JavaScript's,
// since either kind of signer may have produced pd) and compares it with pd.
func payloadMatchesPD(frame, pd []byte) (bool, error) {
	var payload []byte
	var keyBuf [32]byte
	sc := newObjectScanner(frame)
	for {
		key, val, ok, err := sc.next(keyBuf[:0])
		if err != nil {
			return false, fmt.Errorf("%w: frame: %v", ErrBadSignature, err)
		}
		if !ok {
			break
		}
		if string(key) == "payload" {
			payload = val
		}
	}
	for _, style := range []NumberStyle{PythonNumbers, JSNumbers} {
		d, err := PayloadDigest(payload, style)
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		if d == string(pd) {
			return true, nil
		}
	}
	return false, nil
}
