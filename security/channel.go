package security

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/envelope"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/fame-go/fame/internal/jsonscan"
)

const channelInfoPrefix = "fame-channel:"

// ChannelOptions bound a channel's use. The reference never expires or rekeys a channel; we
// do: after MaxAge or MaxMessages (encryptions plus decryptions, since one key serves both
// directions) NeedsRekey reports true and Encrypt refuses, so the owner closes the channel
// (SecureClose) and opens a new one.
type ChannelOptions struct {
	MaxAge      time.Duration // 0: DefaultChannelMaxAge
	MaxMessages uint64        // 0: DefaultChannelMaxMessages
	Now         func() time.Time
	Rand        io.Reader // nonces and ephemeral keys; crypto/rand when nil
}

const (
	// DefaultChannelMaxAge matches the reference's channel_ttl.
	DefaultChannelMaxAge = time.Hour
	// DefaultChannelMaxMessages keeps random 96-bit nonces far from the birthday bound.
	DefaultChannelMaxMessages = 1 << 32
)

func (o ChannelOptions) withDefaults() ChannelOptions {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultChannelMaxAge
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = DefaultChannelMaxMessages
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o
}

// Channel is one end of an established secure channel (§7): a single ChaCha20-Poly1305 key
// for both directions, AAD = cid. Safe for concurrent use.
type Channel struct {
	cid     string
	aead    cipher.AEAD
	opts    ChannelOptions
	created time.Time
	used    atomic.Uint64
	last    atomic.Int64 // unix nanos (opts.Now) of the last encrypt or decrypt, or creation
	closed  atomic.Bool  // taken out of its ChannelTable (closed or replaced)
}

// Closed reports whether the channel was taken out of its table (SecureClose, or replaced by
// another channel with its cid): one atomic load, for the send path, instead of a table lookup.
func (c *Channel) Closed() bool { return c.closed.Load() }

// LastUsed is when the channel last encrypted or decrypted a payload (its creation before).
func (c *Channel) LastUsed() time.Time { return time.Unix(0, c.last.Load()) }

func (c *Channel) touch() { c.last.Store(c.opts.Now().UnixNano()) }

// ChannelHandshake is the initiator's state between SecureOpen and SecureAccept.
type ChannelHandshake struct {
	CID    string
	eph    X25519KeyPair
	ephKey *ecdh.PrivateKey // eph parsed once, so Complete does a single scalar multiplication
}

// NewChannelHandshake starts a channel to destination dest with the reference's cid shape
// auto-<dest>-<random base62>. r supplies the ephemeral key (crypto/rand when nil).
func NewChannelHandshake(dest string, r io.Reader) (*ChannelHandshake, error) {
	return NewChannelHandshakeCID("auto-"+dest+"-"+envelope.NewID(), r)
}

// NewChannelHandshakeCID starts a channel with a caller-chosen cid.
func NewChannelHandshakeCID(cid string, r io.Reader) (*ChannelHandshake, error) {
	if cid == "" {
		return nil, fmt.Errorf("%w: empty cid", ErrUnknownChannel)
	}
	eph, ephKey, err := newX25519Key(r)
	if err != nil {
		return nil, err
	}
	return &ChannelHandshake{CID: cid, eph: eph, ephKey: ephKey}, nil
}

// SecureOpen is the frame to send (sign it: it is a critical frame).
func (h *ChannelHandshake) SecureOpen() *envelope.SecureOpen {
	return &envelope.SecureOpen{CID: h.CID, EphPub: base64.StdEncoding.EncodeToString(h.eph.Public), Alg: ChannelAlgOpen, Opts: 0}
}

// Complete derives the channel from the responder's SecureAccept. A negative accept or a
// cid mismatch is an error.
func (h *ChannelHandshake) Complete(acc *envelope.SecureAccept, opts ChannelOptions) (*Channel, error) {
	if !acc.OK {
		return nil, fmt.Errorf("channel %s: negative SecureAccept: %s %s", h.CID, acc.Code, acc.Reason)
	}
	if acc.CID != h.CID {
		return nil, fmt.Errorf("%w: SecureAccept for %q, expected %q", ErrUnknownChannel, acc.CID, h.CID)
	}
	if acc.Alg != "" && acc.Alg != ChannelAlgOpen {
		return nil, fmt.Errorf("%w: %q", ErrBadAlgorithm, acc.Alg)
	}
	peer, err := decodeEphPub(acc.EphPub)
	if err != nil {
		return nil, err
	}
	k := h.ephKey
	if k == nil {
		if k, err = ecdh.X25519().NewPrivateKey(h.eph.Private); err != nil {
			return nil, fmt.Errorf("%w: channel key: %v", ErrDecrypt, err)
		}
	}
	return newChannel(h.CID, k, peer, opts)
}

// AcceptChannel is the responder side: it answers a SecureOpen with its own ephemeral key.
// An unsupported algorithm gives ErrBadAlgorithm (answer with a negative SecureAccept).
func AcceptChannel(open *envelope.SecureOpen, opts ChannelOptions) (*Channel, *envelope.SecureAccept, error) {
	alg := open.Alg
	if alg == "" {
		alg = ChannelAlgOpen
	}
	if alg != ChannelAlgOpen {
		return nil, nil, fmt.Errorf("%w: %q", ErrBadAlgorithm, open.Alg)
	}
	if open.CID == "" {
		return nil, nil, fmt.Errorf("%w: empty cid", ErrUnknownChannel)
	}
	peer, err := decodeEphPub(open.EphPub)
	if err != nil {
		return nil, nil, err
	}
	o := opts.withDefaults()
	eph, ephKey, err := newX25519Key(o.Rand)
	if err != nil {
		return nil, nil, err
	}
	ch, err := newChannel(open.CID, ephKey, peer, opts)
	if err != nil {
		return nil, nil, err
	}
	return ch, &envelope.SecureAccept{Ack: envelope.Ack{OK: true}, CID: open.CID, EphPub: base64.StdEncoding.EncodeToString(eph.Public), Alg: ChannelAlgOpen}, nil
}

func decodeEphPub(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: ephPub is not 32 bytes of standard base64", ErrDecrypt)
	}
	return b, nil
}

func newChannel(cid string, priv *ecdh.PrivateKey, peerPub []byte, opts ChannelOptions) (*Channel, error) {
	key, err := deriveKeyWith(priv, peerPub, channelInfoPrefix+cid)
	if err != nil {
		return nil, err
	}
	return NewChannelFromKey(cid, key, opts)
}

// NewChannelFromKey builds a channel from an already derived 32-byte key (tests, restore).
func NewChannelFromKey(cid string, key []byte, opts ChannelOptions) (*Channel, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("channel key: %w", err)
	}
	o := opts.withDefaults()
	c := &Channel{cid: cid, aead: aead, opts: o, created: o.Now()}
	c.touch()
	return c, nil
}

// CID is the channel id (sec.enc.kid of every envelope on it).
func (c *Channel) CID() string { return c.cid }

// NeedsRekey is true once the channel has lived MaxAge or carried MaxMessages.
func (c *Channel) NeedsRekey() bool {
	return c.used.Load() >= c.opts.MaxMessages || c.opts.Now().Sub(c.created) >= c.opts.MaxAge
}

// Encrypt seals a payload as the reference does: plaintext is Python json.dumps(payload,
// separators=(",",":")) for objects, arrays and scalars, the raw UTF-8 for a JSON string;
// random 12-byte nonce; the result is the standard-base64 frame payload (codec "b64") and
// sec.enc {alg chacha20-poly1305-channel, kid cid, val hex nonce}.
func (c *Channel) Encrypt(payload json.RawMessage) (string, envelope.Encryption, error) {
	if c.NeedsRekey() {
		return "", envelope.Encryption{}, fmt.Errorf("%w: %s", ErrChannelExhausted, c.cid)
	}
	pt, err := channelPlaintext(payload)
	if err != nil {
		return "", envelope.Encryption{}, fmt.Errorf("channel encrypt: %w", err)
	}
	var nonce [chacha20poly1305.NonceSize]byte
	if _, err := io.ReadFull(c.opts.Rand, nonce[:]); err != nil {
		return "", envelope.Encryption{}, fmt.Errorf("channel nonce: %w", err)
	}
	c.used.Add(1)
	c.touch()
	ct := c.aead.Seal(nil, nonce[:], pt, []byte(c.cid))
	return base64.StdEncoding.EncodeToString(ct), envelope.Encryption{Alg: EncAlgChannel, Kid: c.cid, Val: hex.EncodeToString(nonce[:])}, nil
}

// channelPlaintext is the text the reference encrypts: the decoded text of a JSON string,
// otherwise Python's compact json.dumps of the value.
func channelPlaintext(payload json.RawMessage) ([]byte, error) {
	if p := jsonscan.SkipWS(payload, 0); p < len(payload) && payload[p] == '"' {
		s, end, err := readString(nil, payload, p, strDecoded)
		if err == nil && jsonscan.SkipWS(payload, end) != len(payload) {
			err = fmt.Errorf("trailing data after JSON value at offset %d", end)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCanonical, err)
		}
		return s, nil
	}
	return appendEncoded(nil, payload, &pyCompactOpts)
}

// Decrypt opens a channel payload. The plaintext is returned as JSON: parsed JSON when it is
// JSON, otherwise the text as a JSON string (the reference's fallback).
func (c *Channel) Decrypt(payloadB64 string, enc envelope.Encryption) (json.RawMessage, error) {
	if enc.Alg != EncAlgChannel {
		return nil, fmt.Errorf("%w: %q is not the channel algorithm", ErrBadAlgorithm, enc.Alg)
	}
	if enc.Kid != c.cid {
		return nil, fmt.Errorf("%w: %q on channel %q", ErrUnknownChannel, enc.Kid, c.cid)
	}
	nonce, err := hex.DecodeString(enc.Val)
	if err != nil || len(nonce) != chacha20poly1305.NonceSize {
		return nil, fmt.Errorf("%w: nonce", ErrDecrypt)
	}
	ct, err := base64.StdEncoding.DecodeString(payloadB64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload encoding", ErrDecrypt)
	}
	pt, err := c.aead.Open(nil, nonce, ct, []byte(c.cid))
	if err != nil {
		return nil, fmt.Errorf("%w: channel %s: authentication failed", ErrDecrypt, c.cid)
	}
	c.used.Add(1)
	c.touch()
	if json.Valid(pt) {
		return compactJSON(pt), nil
	}
	return quoteJSON(strings.ToValidUTF8(string(pt), "\uFFFD")), nil
}

// ChannelTable holds a node's established channels by cid. Safe for concurrent use.
type ChannelTable struct {
	mu sync.RWMutex
	m  map[string]*Channel
}

// NewChannelTable returns an empty table.
func NewChannelTable() *ChannelTable { return &ChannelTable{m: map[string]*Channel{}} }

// Put stores (or replaces) a channel.
func (t *ChannelTable) Put(c *Channel) {
	t.mu.Lock()
	if old, ok := t.m[c.cid]; ok && old != c {
		old.closed.Store(true)
	}
	t.m[c.cid] = c
	t.mu.Unlock()
}

// Get returns the channel with cid.
func (t *ChannelTable) Get(cid string) (*Channel, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c, ok := t.m[cid]
	return c, ok
}

// Close forgets a channel (SecureClose received or sent); it reports whether it existed.
func (t *ChannelTable) Close(cid string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.m[cid]
	if ok {
		c.closed.Store(true)
	}
	delete(t.m, cid)
	return ok
}

// Expired returns the cids of channels that need rekeying, so the owner can close them.
func (t *ChannelTable) Expired() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for cid, c := range t.m {
		if c.NeedsRekey() {
			out = append(out, cid)
		}
	}
	return out
}

// Idle returns the cids of channels unused since before cutoff, so the owner can drop them.
func (t *ChannelTable) Idle(cutoff time.Time) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for cid, c := range t.m {
		if c.LastUsed().Before(cutoff) {
			out = append(out, cid)
		}
	}
	return out
}

// Len is the number of channels in the table.
func (t *ChannelTable) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// EncryptEnvelope channel-encrypts env's Data payload in place (sign first).
func (c *Channel) EncryptEnvelope(env *envelope.Envelope) error {
	return rewriteData(env, func(payload json.RawMessage, _ string) (json.RawMessage, string, *envelope.Encryption, error) {
		p, enc, err := c.Encrypt(payload)
		return quoteJSON(p), "b64", &enc, err
	})
}

// DecryptEnvelope decrypts a channel-encrypted Data envelope in place (payload restored,
// codec "json", sec.enc removed). Unknown cid gives ErrUnknownChannel; a tampered payload
// gives ErrDecrypt; in both cases env is left unchanged.
func (t *ChannelTable) DecryptEnvelope(env *envelope.Envelope) (*Channel, error) {
	sec, err := ParseSec(env.Sec)
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Enc == nil {
		return nil, fmt.Errorf("%w: envelope is not encrypted", ErrDecrypt)
	}
	c, ok := t.Get(sec.Enc.Kid)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownChannel, sec.Enc.Kid)
	}
	err = rewriteData(env, func(payload json.RawMessage, _ string) (json.RawMessage, string, *envelope.Encryption, error) {
		var s string
		if err := json.Unmarshal(payload, &s); err != nil {
			return nil, "", nil, fmt.Errorf("%w: channel payload is not a string", ErrDecrypt)
		}
		p, err := c.Decrypt(s, *sec.Enc)
		return p, "json", nil, err
	})
	return c, err
}
