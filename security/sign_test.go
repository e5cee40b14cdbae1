package security

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// Appendix A setup: seed 0x01..0x20, kid test-sig-kid, signer path /Cb8WVCC4ML5RsFM/client01.
func testSeedKey() ed25519.PrivateKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}

const (
	a2Data       = `{"version":"1.0","id":"ENV1","sid":"2bDFT5akYCfhjCen05Vmym","traceId":"TR1","to":"math@fame.fabric","replyTo":"rpc-abc@/Cb8WVCC4ML5RsFM/client01","corrId":"C1","seqId":0,"flowFlags":0,"frame":{"type":"Data","codec":"json","payload":{"jsonrpc":"2.0","id":"req-1","method":"add","params":{"y":4,"x":3,"note":"héllo"}},"pd":"5nNqFZP2SMyuzMoJcWjZXT"},"ts":"2025-01-01T00:00:00.000Z","sec":{"sig":{"kid":"test-sig-kid","val":"UgYM64ysrLt3dd7-go7Zu6srZy2ORwvlDfoEyjIQKIwXjg-JnqEgiNP1IuU7TDVRZuVB4d2lYq7BQdjoEIwrDg"}}}`
	a2DataTBS    = "2bDFT5akYCfhjCen05Vmym\x1f" + `{"capabilities":null,"corr_id":"C1","id":"ENV1","reply_to":"rpc-abc@/Cb8WVCC4ML5RsFM/client01","sid":"2bDFT5akYCfhjCen05Vmym","to":"math@fame.fabric","trace_id":"TR1","version":"1.0"}` + "\x1f5nNqFZP2SMyuzMoJcWjZXT"
	a2SecureOpen = `{"version":"1.0","id":"ENV2","sid":"2bDFT5akYCfhjCen05Vmym","traceId":"TR2","to":"math@fame.fabric","replyTo":"__sys__@/Cb8WVCC4ML5RsFM/client01","corrId":"C2","seqId":0,"flowFlags":0,"frame":{"type":"SecureOpen","cid":"auto-math@fame.fabric-XYZ","ephPub":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","alg":"CHACHA20P1305","opts":0},"ts":"2025-01-01T00:00:00.000Z","sec":{"sig":{"kid":"test-sig-kid","val":"tNbKf1MHt0U10PHclYbWu2gi_ZVMBXymxc857gHJ5BW_WwAyobVzLkSK6y2S3Pg-2erWmdSR2aG1zlnZ14uFDg"}}}`
)

// unsigned decodes a golden envelope and strips what the signer must produce itself.
func unsigned(t testing.TB, wire string, dropPD bool) *envelope.Envelope {
	t.Helper()
	env, err := envelope.Decode([]byte(wire))
	if err != nil {
		t.Fatal(err)
	}
	env.Sec = nil
	if dropPD {
		obj, err := parseRawObject(env.Frame)
		if err != nil {
			t.Fatal(err)
		}
		out := obj[:0]
		for _, m := range obj {
			if m.key != "pd" {
				out = append(out, m)
			}
		}
		env.Frame = out.marshal()
	}
	return env
}

func TestSignAppendixA2(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		dropPD bool
	}{
		{"Data computes pd", a2Data, true},
		{"Data keeps pd", a2Data, false},
		{"SecureOpen", a2SecureOpen, false},
	}
	s := &Signer{Key: testSeedKey(), Kid: "test-sig-kid", OmitAlg: true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := unsigned(t, tt.wire, tt.dropPD)
			if err := s.Sign(env); err != nil {
				t.Fatal(err)
			}
			got, err := env.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.wire {
				t.Fatalf("wire differs:\ngot  %s\nwant %s", got, tt.wire)
			}
			if err := Verify(env, s.Key.Public().(ed25519.PublicKey)); err != nil {
				t.Fatalf("verify own signature: %v", err)
			}
		})
	}
}

func TestTBSAppendixA2(t *testing.T) {
	env := unsigned(t, a2Data, false)
	if got := string(TBS(env.SID, env, "5nNqFZP2SMyuzMoJcWjZXT")); got != a2DataTBS {
		t.Fatalf("TBS\ngot  %q\nwant %q", got, a2DataTBS)
	}
}

func TestSignTSStyleAlg(t *testing.T) {
	env := unsigned(t, a2SecureOpen, false)
	s := &Signer{Key: testSeedKey(), Kid: "k"}
	if err := s.Sign(env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env.Sec), `"alg":"EdDSA"`) {
		t.Fatalf("sec %s lacks alg", env.Sec)
	}
}

func TestSignKeepsEnc(t *testing.T) {
	env := unsigned(t, a2Data, false)
	env.Sec = json.RawMessage(`{"enc":{"alg":"chacha20-poly1305-channel","kid":"cid1","val":"00"}}`)
	s := &Signer{Key: testSeedKey(), Kid: "k"}
	if err := s.Sign(env); err != nil {
		t.Fatal(err)
	}
	sec, err := ParseSec(env.Sec)
	if err != nil || sec.Sig == nil || sec.Enc == nil || sec.Enc.Kid != "cid1" {
		t.Fatalf("sec after sign: %s (%v)", env.Sec, err)
	}
}

func TestSignFillsModelDefaults(t *testing.T) {
	env := unsigned(t, a2SecureOpen, false)
	env.Frame = json.RawMessage(`{"type":"SecureOpen","cid":"auto-math@fame.fabric-XYZ","ephPub":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`)
	s := &Signer{Key: testSeedKey(), Kid: "test-sig-kid", OmitAlg: true}
	if err := s.Sign(env); err != nil {
		t.Fatal(err)
	}
	got, _ := env.Marshal()
	if string(got) != a2SecureOpen {
		t.Fatalf("got  %s\nwant %s", got, a2SecureOpen)
	}
}

func TestVerifyFailures(t *testing.T) {
	pub := testSeedKey().Public().(ed25519.PublicKey)
	otherPub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	mutate := func(f func(e *envelope.Envelope)) *envelope.Envelope {
		e, err := envelope.Decode([]byte(a2Data))
		if err != nil {
			t.Fatal(err)
		}
		f(e)
		return e
	}
	tests := []struct {
		name    string
		env     *envelope.Envelope
		pub     ed25519.PublicKey
		shallow bool
		want    error
	}{
		{"unsigned", mutate(func(e *envelope.Envelope) { e.Sec = nil }), pub, false, ErrUnsigned},
		{"wrong key", mutate(func(*envelope.Envelope) {}), otherPub, false, ErrBadSignature},
		{"changed to", mutate(func(e *envelope.Envelope) { e.To = "evil@fame.fabric" }), pub, false, ErrBadSignature},
		{"changed sid", mutate(func(e *envelope.Envelope) { e.SID = "x" }), pub, false, ErrBadSignature},
		{"payload changed", mutate(func(e *envelope.Envelope) {
			e.Frame = json.RawMessage(strings.Replace(string(e.Frame), `"x":3`, `"x":5`, 1))
		}), pub, false, ErrBadSignature},
		{"bad sig encoding", mutate(func(e *envelope.Envelope) { e.Sec = json.RawMessage(`{"sig":{"kid":"k","val":"!!"}}`) }), pub, false, ErrBadSignature},
		{"malformed sec", mutate(func(e *envelope.Envelope) { e.Sec = json.RawMessage(`{"sig":5}`) }), pub, false, ErrBadSec},
		{"no pd", mutate(func(e *envelope.Envelope) {
			e.Frame = json.RawMessage(`{"type":"Data","payload":1}`)
		}), pub, true, ErrBadSignature},
		{"short key", mutate(func(*envelope.Envelope) {}), pub[:5], false, ErrBadJWK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.shallow {
				err = VerifyShallow(tt.env, tt.pub)
			} else {
				err = Verify(tt.env, tt.pub)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Shallow verification trusts pd, so a payload change is invisible to it but the same
	// envelope fails full verification above.
	e := mutate(func(e *envelope.Envelope) {
		e.Frame = json.RawMessage(strings.Replace(string(e.Frame), `"x":3`, `"x":5`, 1))
	})
	if err := VerifyShallow(e, pub); err != nil {
		t.Fatalf("shallow: %v", err)
	}
}

func TestSignErrors(t *testing.T) {
	env := unsigned(t, a2Data, false)
	env.SID = ""
	if err := (&Signer{Key: testSeedKey(), Kid: "k"}).Sign(env); !errors.Is(err, ErrMissingSID) {
		t.Fatalf("got %v", err)
	}
	env = unsigned(t, a2Data, false)
	if err := (&Signer{Kid: "k"}).Sign(env); err == nil {
		t.Fatal("expected error for missing key")
	}
}
