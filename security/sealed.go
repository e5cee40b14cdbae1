package security

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/fame-go/fame/envelope"
	"golang.org/x/crypto/chacha20poly1305"
)

const sealedInfo = "naylence-sealed-envelope"

// Seal encrypts a Data payload for the holder of recipientPub (X25519, kid recipientKid) as
// the reference's sealed mode does (§6): ephemeral X25519, HKDF-SHA256(info
// "naylence-sealed-envelope"), ChaCha20-Poly1305 without AAD over Python
// json.dumps({"original_codec": codec, "payload": payload}). It returns the new frame payload
// (padded base64url of ciphertext||tag, to be sent with codec "b64") and sec.enc. r supplies
// the ephemeral key then the nonce (crypto/rand when nil).
func Seal(payload json.RawMessage, codec string, recipientPub []byte, recipientKid string, r io.Reader) (string, envelope.Encryption, error) {
	if r == nil {
		r = rand.Reader
	}
	// Python json.dumps({"original_codec": codec, "payload": payload}) with default options.
	plaintext := append(make([]byte, 0, len(payload)+64), `{"original_codec": `...)
	if codec != "" {
		plaintext = appendJSONString(plaintext, codec, true)
	} else {
		plaintext = append(plaintext, "null"...)
	}
	plaintext = append(plaintext, `, "payload": `...)
	plaintext, err := appendEncoded(plaintext, payload, &pyDefaultOpts)
	if err != nil {
		return "", envelope.Encryption{}, fmt.Errorf("seal: payload: %w", err)
	}
	plaintext = append(plaintext, '}')

	eph, ephKey, err := newX25519Key(r)
	if err != nil {
		return "", envelope.Encryption{}, fmt.Errorf("seal: %w", err)
	}
	key, err := deriveKeyWith(ephKey, recipientPub, sealedInfo)
	if err != nil {
		return "", envelope.Encryption{}, fmt.Errorf("seal: %w", err)
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return "", envelope.Encryption{}, err
	}
	header := make([]byte, 32+chacha20poly1305.NonceSize)
	copy(header, eph.Public)
	nonce := header[32:]
	if _, err := io.ReadFull(r, nonce); err != nil {
		return "", envelope.Encryption{}, fmt.Errorf("seal: nonce: %w", err)
	}
	ct := aead.Seal(nil, nonce, plaintext, nil)
	return base64.URLEncoding.EncodeToString(ct), envelope.Encryption{
		Alg: EncAlgSealed, Kid: recipientKid, Val: base64.URLEncoding.EncodeToString(header),
	}, nil
}

// Open reverses Seal with the recipient's X25519 private key and returns the original
// payload (compact JSON) and codec ("" when the sender had none). Any malformed or tampered
// input gives ErrDecrypt.
func Open(payloadB64 string, enc envelope.Encryption, recipientPriv []byte) (json.RawMessage, string, error) {
	if enc.Alg == EncAlgChannel {
		return nil, "", fmt.Errorf("%w: %q is a channel algorithm", ErrBadAlgorithm, enc.Alg)
	}
	header, err := decodeB64URLAny(enc.Val)
	if err != nil || len(header) != 32+chacha20poly1305.NonceSize {
		return nil, "", fmt.Errorf("%w: sealed header", ErrDecrypt)
	}
	ct, err := decodeB64URLAny(payloadB64)
	if err != nil {
		return nil, "", fmt.Errorf("%w: sealed payload encoding", ErrDecrypt)
	}
	priv, err := staticX25519Key(recipientPriv)
	if err != nil {
		return nil, "", fmt.Errorf("%w: key agreement: %v", ErrDecrypt, err)
	}
	key, err := deriveKeyWith(priv, header[:32], sealedInfo)
	if err != nil {
		return nil, "", err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	pt, err := aead.Open(nil, header[32:], ct, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: sealed payload authentication", ErrDecrypt)
	}
	var w struct {
		Codec   *string         `json:"original_codec"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(pt, &w); err != nil || len(w.Payload) == 0 {
		return nil, "", fmt.Errorf("%w: sealed plaintext is not the expected wrapper", ErrDecrypt)
	}
	codec := ""
	if w.Codec != nil {
		codec = *w.Codec
	}
	return compactJSON(w.Payload), codec, nil
}

// SealEnvelope seals env's Data payload in place (sign first: pd stays the plaintext digest).
func SealEnvelope(env *envelope.Envelope, recipientPub []byte, recipientKid string, r io.Reader) error {
	return rewriteData(env, func(payload json.RawMessage, codec string) (json.RawMessage, string, *envelope.Encryption, error) {
		p, enc, err := Seal(payload, codec, recipientPub, recipientKid, r)
		return quoteJSON(p), "b64", &enc, err
	})
}

// OpenEnvelope restores a sealed Data payload in place and removes sec.enc.
func OpenEnvelope(env *envelope.Envelope, recipientPriv []byte) error {
	sec, err := ParseSec(env.Sec)
	if err != nil {
		return err
	}
	if sec == nil || sec.Enc == nil {
		return fmt.Errorf("%w: envelope is not encrypted", ErrDecrypt)
	}
	return rewriteData(env, func(payload json.RawMessage, _ string) (json.RawMessage, string, *envelope.Encryption, error) {
		var s string
		if err := json.Unmarshal(payload, &s); err != nil {
			return nil, "", nil, fmt.Errorf("%w: sealed payload is not a string", ErrDecrypt)
		}
		p, codec, err := Open(s, *sec.Enc, recipientPriv)
		return p, codec, nil, err
	})
}

// rewriteData replaces a Data frame's payload and codec and sets (enc != nil) or clears
// sec.enc, keeping sec.sig and all other frame members as they were.
func rewriteData(env *envelope.Envelope, f func(payload json.RawMessage, codec string) (json.RawMessage, string, *envelope.Encryption, error)) error {
	obj, err := parseRawObject(env.Frame)
	if err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	if ft, _ := obj.stringMember("type"); ft != envelope.TypeData {
		return fmt.Errorf("only Data frames are encrypted, got %q", ft)
	}
	sec, err := ParseSec(env.Sec)
	if err != nil {
		return err
	}
	payload, ok := obj.get("payload")
	if !ok || isJSONNull(payload) {
		return fmt.Errorf("Data frame has no payload")
	}
	codec, err := obj.stringMember("codec")
	if err != nil {
		return err
	}
	newPayload, newCodec, enc, err := f(payload, codec)
	if err != nil {
		return err
	}
	obj.set("payload", newPayload)
	if newCodec == "" {
		out := obj[:0]
		for _, m := range obj {
			if m.key != "codec" {
				out = append(out, m)
			}
		}
		obj = out
	} else {
		obj.set("codec", quoteJSON(newCodec))
	}
	if sec == nil {
		sec = &envelope.Sec{}
	}
	sec.Enc = enc
	if err := setSec(env, sec); err != nil {
		return err
	}
	env.Frame = obj.marshal()
	return nil
}

func decodeB64URLAny(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return json.RawMessage(b.Bytes())
}
