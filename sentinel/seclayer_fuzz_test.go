package sentinel

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// offlineOverlay builds an overlay sentinel that is never served, with one attached
// connection (no socket) whose keys are registered: enough to drive the security layer
// directly.
func offlineOverlay(tb testing.TB) (*Sentinel, *conn, *security.Signer) {
	tb.Helper()
	opts, err := LoadOptions("", config.Getenv(func(k string) (string, bool) {
		v, ok := overlayEnv[k]
		return v, ok
	}))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(opts, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		tb.Fatal(err)
	}
	c := newConn(s, nil, "test", "peer1", "downstream")
	c.systemID, c.path = "peer1", s.path+"/peer1"
	c.sid = envelope.SecureDigest(c.path)
	signer := newSigner(tb)
	key, err := json.Marshal(security.SigningJWK(signer.Key.Public().(ed25519.PublicKey), signer.Kid))
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.sec.attachKeys(c, &envelope.NodeAttach{SystemID: c.systemID, Keys: []json.RawMessage{key}}); err != nil {
		tb.Fatal(err)
	}
	return s, c, signer
}

func drain(c *conn) {
	for {
		batch := c.q.Take(nil, maxBatch, maxBatchBytes)
		if len(batch) == 0 {
			return
		}
		c.q.Release(batch)
	}
}

// FuzzSecLayer feeds arbitrary envelopes through signature enforcement and key-frame handling:
// whatever a peer sends, the layer must not panic.
func FuzzSecLayer(f *testing.F) {
	s, c, signer := offlineOverlay(f)
	seed := func(fr envelope.Frame, mod func(*envelope.Envelope)) {
		e, err := envelope.New(fr)
		if err != nil {
			f.Fatal(err)
		}
		e.SID, e.TraceID, e.CorrID, e.ReplyTo = c.sid, "t1", "c1", "__rpc__x@"+c.path
		if mod != nil {
			mod(e)
		}
		if err := signer.Sign(e); err != nil {
			f.Fatal(err)
		}
		b, err := e.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&envelope.Data{Payload: json.RawMessage(`{"x":1.5}`)}, func(e *envelope.Envelope) { e.To = "math@fame.fabric" })
	seed(&envelope.KeyRequest{Kid: signer.Kid}, nil)
	seed(&envelope.KeyRequest{Address: "math@fame.fabric"}, nil)
	seed(&envelope.KeyAnnounce{PhysicalPath: c.path + "/x", Keys: []json.RawMessage{json.RawMessage(`{"kty":"OKP","crv":"X25519","x":"AAAA","kid":"k","use":"enc"}`)}}, nil)
	seed(&envelope.SecureOpen{CID: "cid", EphPub: "AAAA"}, nil)
	f.Add([]byte(`{"frame":{"type":"Data","pd":"x"},"sec":{"sig":{"kid":"nope","val":"AAAA"}},"id":"i","replyTo":"a@/b","corrId":"c"}`))
	f.Add([]byte(`{"frame":{"type":"KeyAnnounce","keys":[1,{}]},"sec":{"sig":{}}}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var h envelope.Header
		if envelope.ParseHeader(msg, &h) != nil {
			return
		}
		if s.sec.inbound(c, msg, &h) {
			switch string(h.FrameType) {
			case envelope.TypeKeyRequest, envelope.TypeKeyAnnounce:
				s.sec.keyFrame(c, msg, &h)
			}
		}
		drain(c)
	})
}

// BenchmarkSecInbound is the per-envelope cost of overlay enforcement on the routing path:
// decode plus shallow Ed25519 verification of a signed Data request.
func BenchmarkSecInbound(b *testing.B) {
	s, c, signer := offlineOverlay(b)
	e, err := envelope.New(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"add","params":{"x":3,"y":4}}`)})
	if err != nil {
		b.Fatal(err)
	}
	e.SID, e.TraceID, e.CorrID, e.To, e.ReplyTo = c.sid, envelope.NewID(), envelope.NewID(), "math@fame.fabric", "__rpc__x@"+c.path
	if err := signer.Sign(e); err != nil {
		b.Fatal(err)
	}
	msg, err := e.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	var h envelope.Header
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := envelope.ParseHeader(msg, &h); err != nil {
			b.Fatal(err)
		}
		if !s.sec.inbound(c, msg, &h) {
			b.Fatal("refused a good envelope")
		}
	}
}

// BenchmarkSecSignOwn is the cost of signing one sentinel-originated ack.
func BenchmarkSecSignOwn(b *testing.B) {
	s, _, _ := offlineOverlay(b)
	b.ReportAllocs()
	for range b.N {
		e, err := envelope.New(&envelope.AddressBindAck{Ack: envelope.Ack{OK: true, RefID: "r"}, Address: "math@fame.fabric"})
		if err != nil {
			b.Fatal(err)
		}
		e.SID, e.TraceID = s.sid, "t"
		s.sec.signOwn(e)
	}
}
