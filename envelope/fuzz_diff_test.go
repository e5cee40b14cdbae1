package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// FuzzDifferential runs the routing fast path (ParseHeader), the full decoder (Decode) and
// encoding/json over the same bytes, starting from the captured reference traffic:
//   - ParseHeader and Decode accept exactly the same messages;
//   - what they accept is valid JSON in which an independent encoding/json pass finds no
//     duplicate key (unescaped, aliases as one key) in the envelope, frame, sec or meta;
//   - on what they accept, all three read the same routing fields.
func FuzzDifferential(f *testing.F) {
	seedCorpus(f)
	for _, s := range []string{
		`{"to":"math@fame.fabric","t\u006f":"evil@fame.fabric","frame":{"type":"Data"}}`,
		`{"t\u006f":"evil@fame.fabric","to":"math@fame.fabric","frame":{"type":"Data"}}`,
		`{"replyTo":"a@b","reply_to":"c@d","frame":{"type":"Data"}}`,
		`{"frame":{"type":"SecureOpen","cid":"a","CID":"b"}}`,
		`{"frame":{"type":"Data"},"sec":{"sig":{"kid":"a","val":"v","kid":"b"}}}`,
		`{"frame":{"type":"Data"},"meta":{"set":{"aft":"a","AFT":"b"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		herr := ParseHeader(b, &h)
		e, derr := Decode(b)
		if (herr == nil) != (derr == nil) {
			t.Fatalf("ParseHeader %v, Decode %v\n%q", herr, derr, b)
		}
		if herr != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted what encoding/json calls invalid: %q", b)
		}
		if d := jsonDuplicate(t, b); d != "" {
			t.Fatalf("accepted though encoding/json sees %s: %q", d, b)
		}
		// ParseHeader against Decode.
		for _, p := range []struct {
			name string
			h    []byte
			e    string
		}{{"id", h.ID, e.ID}, {"sid", h.SID, e.SID}, {"traceId", h.TraceID, e.TraceID}, {"to", h.To, e.To},
			{"replyTo", h.ReplyTo, e.ReplyTo}, {"corrId", h.CorrID, e.CorrID}, {"flowId", h.FlowID, e.FlowID},
			{"aft", h.AFT, e.AFT}, {"frame.type", h.FrameType, e.FrameType()}} {
			if string(p.h) != p.e {
				t.Fatalf("%s: ParseHeader %q, Decode %q\n%q", p.name, p.h, p.e, b)
			}
		}
		if h.RType != e.RType || h.SeqID != e.SeqID || h.FlowFlags != e.FlowFlags {
			t.Fatalf("numbers: ParseHeader %d/%d/%d, Decode %d/%d/%d\n%q", h.RType, h.SeqID, h.FlowFlags, e.RType, e.SeqID, e.FlowFlags, b)
		}
		if len(e.Meta) > 0 && e.Meta[0] == '{' && !bytes.Equal(h.Meta, e.Meta) {
			t.Fatalf("meta: ParseHeader %q, Decode %q", h.Meta, e.Meta)
		}
		// Both against encoding/json (aliases folded to the camelCase key).
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		for k, v := range top {
			if c, ok := canonicalKeys[k]; ok {
				top[c] = v
			}
		}
		for _, p := range []struct {
			key string
			h   []byte
		}{{"id", h.ID}, {"sid", h.SID}, {"traceId", h.TraceID}, {"to", h.To}, {"replyTo", h.ReplyTo},
			{"corrId", h.CorrID}, {"flowId", h.FlowID}, {"aft", h.AFT}} {
			if got := jsonStr(t, top[p.key]); got != string(p.h) {
				t.Fatalf("%s: ParseHeader %q, encoding/json %q\n%q", p.key, p.h, got, b)
			}
		}
		// The frame as the sentinel's and the nodes' frame decoders (encoding/json into
		// structs, which matches keys case-insensitively) read it.
		var fr struct {
			Type, Cid, Address, FlowID *string
			Credits                    *int64
		}
		if json.Unmarshal(top["frame"], &fr) == nil {
			for _, p := range []struct {
				name string
				h    []byte
				j    *string
			}{{"type", h.FrameType, fr.Type}, {"cid", h.FrameCID, fr.Cid}, {"address", h.FrameAddress, fr.Address}, {"flowId", h.FrameFlowID, fr.FlowID}} {
				if p.j != nil && *p.j != string(p.h) {
					t.Fatalf("frame.%s: ParseHeader %q, encoding/json %q\n%q", p.name, p.h, *p.j, b)
				}
			}
			if fr.Credits != nil && *fr.Credits != h.FrameCredits {
				t.Fatalf("frame.credits: ParseHeader %d, encoding/json %d", h.FrameCredits, *fr.Credits)
			}
		}
		// sec as security.ParseSec (encoding/json into envelope.Sec) reads it.
		var sec Sec
		if raw := top["sec"]; len(raw) > 0 && json.Unmarshal(raw, &sec) == nil {
			if (sec.Sig != nil) != h.HasSig {
				t.Fatalf("sec.sig: ParseHeader %v, encoding/json %v\n%q", h.HasSig, sec.Sig != nil, b)
			}
			if sec.Enc != nil && sec.Enc.Kid != string(h.EncKID) {
				t.Fatalf("sec.enc.kid: ParseHeader %q, encoding/json %q\n%q", h.EncKID, sec.Enc.Kid, b)
			}
		}
	})
}

func jsonStr(t *testing.T, raw json.RawMessage) string {
	var s *string
	if len(raw) == 0 {
		return ""
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("not a string: %s", raw)
	}
	if s == nil {
		return ""
	}
	return *s
}

// jsonKeys lists an object's keys (unescaped by encoding/json, in order, repeats kept) and the
// last value of each; ok is false when raw is not an object.
func jsonKeys(raw []byte) (keys []string, vals map[string]json.RawMessage, ok bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	vals = map[string]json.RawMessage{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, false
		}
		k := tok.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, nil, false
		}
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals, true
}

// jsonDuplicate is the independent duplicate check: "" or what it found.
func jsonDuplicate(t *testing.T, b []byte) string {
	keys, vals, ok := jsonKeys(b)
	if !ok {
		t.Fatalf("encoding/json cannot walk the envelope: %q", b)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		n := k
		if c, ok := canonicalKeys[k]; ok {
			n = c
		}
		if seen[n] {
			return "duplicate top-level " + k
		}
		seen[n] = true
	}
	// nested checks an object's keys: no repeat, and no key equal to one of names under
	// encoding/json's case folding unless it is that name exactly.
	nested := func(where string, raw json.RawMessage, names ...string) (string, map[string]json.RawMessage) {
		keys, vals, ok := jsonKeys(raw)
		if !ok {
			return "", nil
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				return fmt.Sprintf("duplicate %s key %q", where, k), nil
			}
			seen[k] = true
			for _, n := range names {
				if k != n && strings.EqualFold(k, n) {
					return fmt.Sprintf("%s key %q folds to %q", where, k, n), nil
				}
			}
		}
		return "", vals
	}
	if d, _ := nested("frame", vals["frame"], "type", "cid", "address", "flowId", "credits"); d != "" {
		return d
	}
	d, sec := nested("sec", vals["sec"], "sig", "enc")
	if d != "" {
		return d
	}
	if d, _ := nested("sec.sig", sec["sig"], "kid", "val", "alg"); d != "" {
		return d
	}
	if d, _ := nested("sec.enc", sec["enc"], "alg", "kid", "val"); d != "" {
		return d
	}
	d, meta := nested("meta", vals["meta"], "set", "set.aft")
	if d != "" {
		return d
	}
	d, _ = nested("meta.set", meta["set"], "aft")
	return d
}
