package security

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fame-go/fame/envelope"
)

// Algorithm labels used in sec headers.
const (
	SigAlgEdDSA     = "EdDSA"
	EncAlgSealed    = "ECDH-ES+A256GCM" // the reference's label; the cipher is really ChaCha20-Poly1305
	EncAlgChannel   = "chacha20-poly1305-channel"
	ChannelAlgOpen  = "CHACHA20P1305" // SecureOpen/SecureAccept alg
	encAlgChacha    = "chacha20-poly1305"
	encAlgAESGCM    = "aes-256-gcm"
	usSeparatorByte = 0x1F
)

// ParseSec decodes a raw sec header. nil or empty input gives (nil, nil). Members must have
// the right JSON types; unknown members are ignored (peers may add some). Duplicate keys and
// case variants of sig/enc/kid/val/alg are refused (envelope.CheckSec).
func ParseSec(raw json.RawMessage) (*envelope.Sec, error) {
	// Every node receive parses the sec header; encoding/json cost a few µs of CPU per
	// envelope. The common shape (plain ASCII strings, known members once each) is read in
	// place with the same result; anything else takes the encoding/json path below.
	if v, ok := fastSecView(raw); ok {
		return v.sec(), nil
	}
	return parseSecJSON(raw)
}

// parseSecJSON is ParseSec through encoding/json, for every shape the fast reader declines.
func parseSecJSON(raw json.RawMessage) (*envelope.Sec, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isJSONNull(raw) {
		return nil, nil
	}
	// encoding/json takes the last of two "kid"s and reads "Kid" as "kid"; the router and the
	// reference read differently, so such a header is refused rather than interpreted.
	if err := envelope.CheckSec(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSec, err)
	}
	var s envelope.Sec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSec, err)
	}
	if s.Sig != nil && (s.Sig.Kid == "" || s.Sig.Val == "") {
		return nil, fmt.Errorf("%w: sig needs kid and val", ErrBadSec)
	}
	if s.Enc != nil && s.Enc.Kid == "" {
		return nil, fmt.Errorf("%w: enc needs kid", ErrBadSec)
	}
	return &s, nil
}

// sec builds the parsed header from a fast view in two allocations: one for the structs and
// one string holding the values back to back, which the fields slice.
func (v secView) sec() *envelope.Sec {
	var parts [6][]byte
	n := 0
	if v.hasSig {
		parts[0], parts[1], parts[2] = v.kid, v.val, v.alg
	}
	if v.hasEnc {
		parts[3], parts[4], parts[5] = v.enc[0], v.enc[1], v.enc[2]
	}
	for _, p := range parts {
		n += len(p)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, p := range parts {
		sb.Write(p)
	}
	all := sb.String()
	var strs [6]string
	off := 0
	for i, p := range parts {
		strs[i] = all[off : off+len(p)]
		off += len(p)
	}
	out := &struct {
		sec envelope.Sec
		sig envelope.Signature
		enc envelope.Encryption
	}{}
	if v.hasSig {
		out.sig = envelope.Signature{Kid: strs[0], Val: strs[1], Alg: strs[2]}
		out.sec.Sig = &out.sig
	}
	if v.hasEnc {
		out.enc = envelope.Encryption{Alg: strs[3], Kid: strs[4], Val: strs[5]}
		out.sec.Enc = &out.enc
	}
	return &out.sec
}

// setSec writes sec back into the envelope; an empty header removes the member.
func setSec(env *envelope.Envelope, s *envelope.Sec) error {
	if s == nil || (s.Sig == nil && s.Enc == nil) {
		env.Sec = nil
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode sec: %w", err)
	}
	env.Sec = b
	return nil
}

// EncLevel classifies an envelope's encryption as the reference does: no sec.enc is
// plaintext, the channel alg is channel, and any other alg (known sealed labels or unknown)
// counts as sealed.
func EncLevel(s *envelope.Sec) Level {
	switch {
	case s == nil || s.Enc == nil:
		return LevelPlaintext
	case s.Enc.Alg == EncAlgChannel:
		return LevelChannel
	default:
		return LevelSealed
	}
}
