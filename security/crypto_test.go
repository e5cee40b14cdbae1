package security

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

func fill(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func seq(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(i)
	}
	return out
}

func TestSealedAppendixA4(t *testing.T) {
	recipient, err := X25519FromPrivate(fill(0x33, 32))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(recipient.Public); got != "ew1H2TQn-DERYHgcfHM_2J-IlwrvSQ2KoO4ZpMuKGxQ" {
		t.Fatalf("recipient public %s", got)
	}
	r := bytes.NewReader(append(fill(0x44, 32), fill(0xAA, 12)...))
	payload, enc, err := Seal(json.RawMessage(`{"x":1}`), "json", recipient.Public, "enc-kid", r)
	if err != nil {
		t.Fatal(err)
	}
	const wantPayload = "wmLtGQsVF6JHCnbV1jTxKwWSYpowY6VCSJReRWyHK2si_LOoupB81HRjcgxoSSCoOWGVAM1UmEtINjRL7hn6"
	want := envelope.Encryption{Alg: "ECDH-ES+A256GCM", Kid: "enc-kid", Val: "_y7kVgHsG2cxDHeQQEWFrmlzMe7hwfjPJBlzHB__Pmuqqqqqqqqqqqqqqqo="}
	if payload != wantPayload || enc != want {
		t.Fatalf("got %s %+v\nwant %s %+v", payload, enc, wantPayload, want)
	}
	got, codec, err := Open(payload, enc, recipient.Private)
	if err != nil || string(got) != `{"x":1}` || codec != "json" {
		t.Fatalf("open: %s %q %v", got, codec, err)
	}
}

func TestSealedEnvelopeRoundTripAndTamper(t *testing.T) {
	recipient, _ := NewX25519Key(nil)
	other, _ := NewX25519Key(nil)
	env := unsigned(t, a2Data, false)
	s := &Signer{Key: testSeedKey(), Kid: "k"}
	if err := s.Sign(env); err != nil {
		t.Fatal(err)
	}
	orig := append([]byte(nil), env.Frame...)
	if err := SealEnvelope(env, recipient.Public, "enc-kid", nil); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env.Frame, []byte("héllo")) {
		t.Fatal("plaintext visible after seal")
	}
	pub := testSeedKey().Public()
	if err := VerifyShallow(env, pub.(ed25519.PublicKey)); err != nil {
		t.Fatalf("shallow verify of sealed envelope: %v", err)
	}
	if EncLevel(mustSec(t, env)) != LevelSealed {
		t.Fatal("level")
	}
	wrong := *env
	if err := OpenEnvelope(&wrong, other.Private); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := OpenEnvelope(env, recipient.Private); err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal(orig, &a)
	_ = json.Unmarshal(env.Frame, &b)
	if ab, _ := json.Marshal(a); string(ab) != func() string { bb, _ := json.Marshal(b); return string(bb) }() {
		t.Fatalf("frame after open %s, want %s", env.Frame, orig)
	}
	if err := Verify(env, pub.(ed25519.PublicKey)); err != nil {
		t.Fatalf("verify after open: %v", err)
	}
	sec := mustSec(t, env)
	if sec.Enc != nil || sec.Sig == nil {
		t.Fatalf("sec after open: %s", env.Sec)
	}
	// Flip one ciphertext bit.
	p, enc, _ := Seal(json.RawMessage(`{"x":1}`), "json", recipient.Public, "k", nil)
	raw, _ := base64.URLEncoding.DecodeString(p)
	raw[3] ^= 1
	if _, _, err := Open(base64.URLEncoding.EncodeToString(raw), enc, recipient.Private); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered: %v", err)
	}
}

func mustSec(t *testing.T, env *envelope.Envelope) *envelope.Sec {
	t.Helper()
	s, err := ParseSec(env.Sec)
	if err != nil || s == nil {
		t.Fatalf("sec %s: %v", env.Sec, err)
	}
	return s
}

func TestChannelAppendixA3(t *testing.T) {
	const cid = "auto-math@fame.fabric-CHAN1"
	h, err := NewChannelHandshakeCID(cid, bytes.NewReader(fill(0x11, 32)))
	if err != nil {
		t.Fatal(err)
	}
	open := h.SecureOpen()
	openJSON, _ := envelope.EncodeFrame(open)
	if string(openJSON) != `{"type":"SecureOpen","cid":"auto-math@fame.fabric-CHAN1","ephPub":"e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=","alg":"CHACHA20P1305","opts":0}` {
		t.Fatalf("SecureOpen %s", openJSON)
	}
	server, acc, err := AcceptChannel(open, ChannelOptions{Rand: bytes.NewReader(append(fill(0x22, 32), seq(12)...))})
	if err != nil {
		t.Fatal(err)
	}
	accJSON, _ := envelope.EncodeFrame(acc)
	if string(accJSON) != `{"type":"SecureAccept","ok":true,"cid":"auto-math@fame.fabric-CHAN1","ephPub":"D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=","alg":"CHACHA20P1305"}` {
		t.Fatalf("SecureAccept %s", accJSON)
	}
	key, err := deriveKey(fill(0x11, 32), mustB64(t, acc.EphPub), channelInfoPrefix+cid)
	if err != nil || hex.EncodeToString(key) != "8c3c38dad7fc66aa8cff9cfaf41e2d319483a558464bac2ef283482535bc3517" {
		t.Fatalf("channel key %x %v", key, err)
	}
	client, err := h.Complete(acc, ChannelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The responder encrypts the A.3 reply with nonce 0..11 (next bytes of its reader).
	payload, enc, err := server.Encrypt(json.RawMessage(`{"jsonrpc":"2.0","id":"1","result":7}`))
	if err != nil {
		t.Fatal(err)
	}
	if payload != "+RKj/ratSk9zz6hBTRtLpMU18TwGTBRlnHm/tMUTjJhi4MWgylLwuhkCa9/1zB77gFGWK0M=" ||
		enc != (envelope.Encryption{Alg: "chacha20-poly1305-channel", Kid: cid, Val: "000102030405060708090a0b"}) {
		t.Fatalf("ciphertext %s %+v", payload, enc)
	}
	got, err := client.Decrypt(payload, enc)
	if err != nil || string(got) != `{"jsonrpc":"2.0","id":"1","result":7}` {
		t.Fatalf("decrypt %s %v", got, err)
	}
}

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newChannelPair(t testing.TB, opts ChannelOptions) (*Channel, *Channel) {
	h, err := NewChannelHandshake("math@fame.fabric", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, acc, err := AcceptChannel(h.SecureOpen(), opts)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := h.Complete(acc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return cli, srv
}

func TestChannelEnvelopeErrors(t *testing.T) {
	cli, srv := newChannelPair(t, ChannelOptions{})
	table := NewChannelTable()
	table.Put(srv)
	mk := func() *envelope.Envelope {
		env := unsigned(t, a2Data, false)
		if err := (&Signer{Key: testSeedKey(), Kid: "k"}).Sign(env); err != nil {
			t.Fatal(err)
		}
		if err := cli.EncryptEnvelope(env); err != nil {
			t.Fatal(err)
		}
		return env
	}
	env := mk()
	if EncLevel(mustSec(t, env)) != LevelChannel {
		t.Fatal("level")
	}
	if _, err := table.DecryptEnvelope(env); err != nil {
		t.Fatal(err)
	}
	if err := Verify(env, testSeedKey().Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("signature after decrypt: %v", err)
	}

	tampered := mk()
	tampered.Frame = bytes.Replace(tampered.Frame, []byte(`"payload":"`), []byte(`"payload":"AAAA`), 1)
	before := string(tampered.Frame)
	if _, err := table.DecryptEnvelope(tampered); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered: %v", err)
	}
	if string(tampered.Frame) != before {
		t.Fatal("failed decrypt modified the envelope")
	}
	unknown := mk()
	table.Close(srv.CID())
	if _, err := table.DecryptEnvelope(unknown); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := srv.Decrypt("AAAA", envelope.Encryption{Alg: EncAlgChannel, Kid: "other", Val: "00"}); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("foreign cid: %v", err)
	}
	if _, _, err := AcceptChannel(&envelope.SecureOpen{CID: "c", EphPub: base64.StdEncoding.EncodeToString(fill(9, 32)), Alg: "AES"}, ChannelOptions{}); !errors.Is(err, ErrBadAlgorithm) {
		t.Fatalf("alg: %v", err)
	}
	// A string payload is carried as raw text and comes back as a JSON string.
	p, enc, err := cli.Encrypt(json.RawMessage(`"hi \"there\""`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := srv.Decrypt(p, enc); err != nil || string(got) != `"hi \"there\""` {
		t.Fatalf("string payload %s %v", got, err)
	}
}

func TestChannelRekey(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	cli, _ := newChannelPair(t, ChannelOptions{MaxMessages: 3, MaxAge: time.Minute, Now: clock})
	for i := 0; i < 3; i++ {
		if cli.NeedsRekey() {
			t.Fatalf("rekey after %d messages", i)
		}
		if _, _, err := cli.Encrypt(json.RawMessage(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	if !cli.NeedsRekey() {
		t.Fatal("no rekey after max messages")
	}
	if _, _, err := cli.Encrypt(json.RawMessage(`1`)); !errors.Is(err, ErrChannelExhausted) {
		t.Fatalf("encrypt past budget: %v", err)
	}
	aged, _ := newChannelPair(t, ChannelOptions{MaxAge: time.Minute, Now: clock})
	now = now.Add(59 * time.Second)
	if aged.NeedsRekey() {
		t.Fatal("rekey too early")
	}
	now = now.Add(time.Second)
	if !aged.NeedsRekey() {
		t.Fatal("no rekey after max age")
	}
	table := NewChannelTable()
	table.Put(aged)
	if got := table.Expired(); len(got) != 1 || got[0] != aged.CID() {
		t.Fatalf("expired %v", got)
	}
}

// A channel knows when it left its table: closed, or replaced by another with its cid.
func TestChannelClosedFlag(t *testing.T) {
	key := make([]byte, 32)
	mk := func(cid string) *Channel {
		c, err := NewChannelFromKey(cid, key, ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	table := NewChannelTable()
	a, b, c := mk("c1"), mk("c1"), mk("c2")
	table.Put(a)
	table.Put(c)
	table.Put(a) // the same channel again: still open
	if a.Closed() || c.Closed() {
		t.Fatal("a channel in its table reports closed")
	}
	table.Put(b) // replaces a
	if !a.Closed() || b.Closed() {
		t.Fatalf("after a replacement: old closed %v, new closed %v", a.Closed(), b.Closed())
	}
	if !table.Close("c2") || !c.Closed() {
		t.Fatal("a closed channel does not report closed")
	}
}
