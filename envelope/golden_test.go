package envelope

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/fame-go/fame/internal/jsonscan"
)

// captured is one WebSocket message from testdata/captures (real Naylence TS traffic).
type captured struct {
	file string
	line int
	dir  string // c2s or s2c
	data []byte
}

func loadCaptures(t testing.TB) []captured {
	t.Helper()
	files, err := filepath.Glob("testdata/captures/*/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no capture files: %v", err)
	}
	var out []captured
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		n := 0
		for sc.Scan() {
			n++
			var rec struct {
				Dir  string `json:"dir"`
				Kind string `json:"kind"`
				Data string `json:"data"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s:%d: %v", f, n, err)
			}
			if rec.Kind == "message" {
				out = append(out, captured{file: f, line: n, dir: rec.Dir, data: []byte(rec.Data)})
			}
		}
		fh.Close()
	}
	return out
}

func asMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return m
}

// canonicalKeys maps the snake_case spellings the decoder accepts to the camelCase ones the
// encoder writes, so a re-encoded auth-rejection frame compares equal to its snake original.
var canonicalKeys = map[string]string{"trace_id": "traceId", "reply_to": "replyTo", "corr_id": "corrId",
	"flow_id": "flowId", "seq_id": "seqId", "flow_flags": "flowFlags"}

func normalizeTop(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if c, ok := canonicalKeys[k]; ok {
			k = c
		}
		out[k] = v
	}
	return out
}

// TestGoldenCaptures decodes every captured message and checks that re-encoding keeps it.
func TestGoldenCaptures(t *testing.T) {
	msgs := loadCaptures(t)
	types := map[string]int{}
	for _, c := range msgs {
		e, err := Decode(c.data)
		if err != nil {
			t.Fatalf("%s:%d: decode: %v", c.file, c.line, err)
		}
		types[e.FrameType()]++
		var h Header
		if err := ParseHeader(c.data, &h); err != nil {
			t.Fatalf("%s:%d: header: %v", c.file, c.line, err)
		}
		if string(h.FrameType) != e.FrameType() || string(h.To) != e.To || string(h.SID) != e.SID ||
			string(h.FlowID) != e.FlowID || string(h.CorrID) != e.CorrID || string(h.ReplyTo) != e.ReplyTo ||
			h.RType != e.RType || h.SeqID != e.SeqID || h.FlowFlags != e.FlowFlags || string(h.ID) != e.ID {
			t.Fatalf("%s:%d: header disagrees with full decode: %+v", c.file, c.line, h)
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("%s:%d: marshal: %v", c.file, c.line, err)
		}
		if !reflect.DeepEqual(normalizeTop(asMap(t, c.data)), asMap(t, out)) {
			t.Fatalf("%s:%d: re-encoding changed the envelope\n in: %s\nout: %s", c.file, c.line, c.data, out)
		}
		for _, key := range []string{"frame", "sec", "meta"} {
			if a, b := rawMember(t, c.data, key), rawMember(t, out, key); !bytes.Equal(a, b) {
				t.Fatalf("%s:%d: %s not byte-identical:\n%s\n%s", c.file, c.line, key, a, b)
			}
		}
		if _, err := e.DecodeFrame(); err != nil {
			t.Fatalf("%s:%d: frame: %v", c.file, c.line, err)
		}
	}
	names := make([]string, 0, len(types))
	for k := range types {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("checked %d captured messages; frame types: %v", len(msgs), types)
	if len(msgs) < 1400 {
		t.Fatalf("expected ~1,400 captured messages, found %d", len(msgs))
	}
	for _, want := range []string{TypeNodeAttach, TypeNodeAttachAck, TypeAddressBind, TypeAddressBindAck,
		TypeCapabilityAdvertise, TypeCapabilityAdvertiseAck, TypeData, TypeDeliveryAck, TypeCreditUpdate,
		TypeNodeHeartbeat, TypeNodeHeartbeatAck, TypeKeyRequest, TypeKeyAnnounce} {
		if types[want] == 0 {
			t.Errorf("frame type %s not covered by the captures", want)
		}
	}
}

// rawMember returns the raw bytes of a top-level member, or nil.
func rawMember(t testing.TB, b []byte, key string) []byte {
	var out []byte
	if _, err := eachMember(b, jsonscan.SkipWS(b, 0), 0, func(m member) error {
		if m.keyString() == key {
			out = b[m.valStart:m.valEnd]
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenForwarding compares the reference sentinel's forwarding with our re-stamp: for
// each envelope a peer sent (c2s) that the sentinel forwarded to another peer (s2c, same id,
// same scenario), Restamp of the incoming bytes with the forwarded seqId/flowFlags must equal
// the forwarded envelope field by field.
func TestGoldenForwarding(t *testing.T) {
	msgs := loadCaptures(t)
	type key struct{ scenario, id string }
	sent := map[key]captured{}
	for _, c := range msgs {
		if c.dir != "c2s" {
			continue
		}
		var h Header
		if err := ParseHeader(c.data, &h); err != nil {
			t.Fatal(err)
		}
		sent[key{filepath.Dir(c.file), string(h.ID)}] = c
	}
	checked := 0
	for _, c := range msgs {
		if c.dir != "s2c" {
			continue
		}
		var fw Header
		if err := ParseHeader(c.data, &fw); err != nil {
			t.Fatal(err)
		}
		in, ok := sent[key{filepath.Dir(c.file), string(fw.ID)}]
		if !ok || in.file == c.file {
			continue // originated by the sentinel, or an echo on the same connection
		}
		var h Header
		if err := ParseHeader(in.data, &h); err != nil {
			t.Fatal(err)
		}
		got := Restamp(nil, in.data, &h, fw.SeqID, fw.FlowFlags)
		if !reflect.DeepEqual(asMap(t, got), asMap(t, c.data)) {
			t.Fatalf("%s:%d forwarded differs from our re-stamp of %s:%d\nref: %s\nour: %s",
				c.file, c.line, in.file, in.line, c.data, got)
		}
		checked++
	}
	t.Logf("checked %d forwarded envelopes against our re-stamp", checked)
	if checked < 300 {
		t.Fatalf("expected hundreds of forwarded envelopes, found %d", checked)
	}
}
