package envelope

import (
	"bytes"
	"testing"
)

// seedCorpus adds every captured message as a seed, so the fuzzer starts from real traffic.
func seedCorpus(f *testing.F) {
	for _, c := range loadCaptures(f) {
		f.Add(c.data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"frame":{"type":"Data"},"seq_id":1}`))
}

func FuzzDecode(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		var h Header
		herr := ParseHeader(b, &h)
		if err != nil {
			return
		}
		if herr != nil {
			t.Fatalf("Decode accepted what ParseHeader refused (%v): %q", herr, b)
		}
		if string(h.FrameType) != e.FrameType() {
			t.Fatalf("frame type disagreement %q vs %q", h.FrameType, e.FrameType())
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("marshal of decoded envelope: %v", err)
		}
		e2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v\n%s", err, out)
		}
		if !bytes.Equal(e2.Frame, e.Frame) || !bytes.Equal(e2.Sec, e.Sec) || !bytes.Equal(e2.Meta, e.Meta) {
			t.Fatalf("raw members changed on re-encode")
		}
		_, _ = e.DecodeFrame()
		_, _ = e.ParseSec()
		// Restamp must always produce a valid envelope with the new values.
		r := Restamp(nil, b, &h, 9, FlowReset)
		e3, err := Decode(r)
		if err != nil {
			t.Fatalf("restamp produced invalid envelope: %v\nin: %q\nout: %q", err, b, r)
		}
		if e3.SeqID != 9 || e3.FlowFlags != FlowReset || !bytes.Equal(e3.Frame, e.Frame) {
			t.Fatalf("restamp lost data: %q", r)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"math@fame.fabric", "math@*.fame.fabric", "__sys__@/a/b", "svc@h.x/v1/y", "n@/p/*", "a@b@c", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("round trip %q -> %q", s, a.String())
		}
		b, err := ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("reparse %q: %+v %v", s, b, err)
		}
		_ = MatchPool(a.Host, "fame.fabric")
	})
}
