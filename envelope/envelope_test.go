package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestSecureDigestVectors(t *testing.T) {
	for in, want := range map[string]string{
		"/WTps2sKZfgi0a5kw":                  "1v6krncMmIUyxwTKrnFxQc",
		"/WTps2sKZfgi0a5kw/jCPsDnt3zXGzmHvY": "4lEOwRnZ5AggQ7Pc3eNzFk",
		"/WTps2sKZfgi0a5kw/zh9JHqZKR1w3w4nm": "5VEej3l5KWoUd4lYoDZq3d",
		"/Cb8WVCC4ML5RsFM":                   "5AMFSHtvWhBikizsWGW8wR",
		"/Cb8WVCC4ML5RsFM/client01":          "2bDFT5akYCfhjCen05Vmym",
		"":                                   "6VE2wRoL3MNCIb6wil2FiA",
	} {
		if got := SecureDigest(in); got != want {
			t.Errorf("SecureDigest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := NewID()
		if len(id) != IDLength || strings.Trim(id, base62) != "" {
			t.Fatalf("bad id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

// TestNewIDConcurrent catches generators that share or repeat a seed: ids drawn from many
// goroutines at once (so from several pooled generators) must still never collide, and
// every base62 character must turn up.
func TestNewIDConcurrent(t *testing.T) {
	const workers, each = 8, 2000
	out := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				out[w] = append(out[w], NewID())
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	chars := map[rune]bool{}
	for _, ids := range out {
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate id %q", id)
			}
			seen[id] = true
			for _, c := range id {
				chars[c] = true
			}
		}
	}
	if len(chars) != len(base62) {
		t.Errorf("ids used %d distinct characters, want all %d", len(chars), len(base62))
	}
}

func TestParseAddress(t *testing.T) {
	cases := []struct {
		in       string
		want     Address
		wildcard bool
		err      bool
	}{
		{"math@fame.fabric", Address{"math", "fame.fabric", ""}, false, false},
		{"math@*.fame.fabric", Address{"math", "*.fame.fabric", ""}, true, false},
		{"__sys__@/WTps2sKZfgi0a5kw/zh9JHqZKR1w3w4nm", Address{"__sys__", "", "/WTps2sKZfgi0a5kw/zh9JHqZKR1w3w4nm"}, false, false},
		{"__rpc__abc@/a/b", Address{"__rpc__abc", "", "/a/b"}, false, false},
		{"svc@api.fame.fabric/v1/x", Address{"svc", "api.fame.fabric", "/v1/x"}, false, false},
		{"name@/some/path/*", Address{"name", "", "/some/path/*"}, true, false},
		{"name@/some/path/**", Address{"name", "", "/some/path/**"}, true, false},
		{"a@b@fame.fabric", Address{}, false, true}, // participant "a@b" is invalid
		{"math", Address{}, false, true},
		{"@fame.fabric", Address{}, false, true},
		{"math@", Address{}, false, true},
		{"math@fame.*.fabric", Address{}, false, true},
		{"math@fame..fabric", Address{}, false, true},
		{"ma th@fame.fabric", Address{}, false, true},
		{"math@/a//b", Address{}, false, true},
		{"math@/a/*/b", Address{}, false, true},
	}
	for _, c := range cases {
		got, err := ParseAddress(c.in)
		if c.err {
			if !errors.Is(err, ErrBadAddress) {
				t.Errorf("ParseAddress(%q): want ErrBadAddress, got %v (%+v)", c.in, err, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if got.String() != c.in {
			t.Errorf("String() = %q, want %q", got.String(), c.in)
		}
		if got.IsWildcard() != c.wildcard {
			t.Errorf("%q IsWildcard = %v", c.in, got.IsWildcard())
		}
	}
}

func TestMatchPool(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"*.fame.fabric", "fame.fabric", true},
		{"*.fame.fabric", "x.fame.fabric", true},
		{"*.fame.fabric", "a.b.fame.fabric", true},
		{"*.fame.fabric", "xfame.fabric", false},
		{"*.fame.fabric", "fabric", false},
		{"*.fame.fabric", "other.fabric", false},
		{"fame.fabric", "fame.fabric", false},
		{"*", "anything", true},
	}
	for _, c := range cases {
		if got := MatchPool(c.pattern, c.host); got != c.want {
			t.Errorf("MatchPool(%q, %q) = %v", c.pattern, c.host, got)
		}
	}
}

func TestLogicalAllowed(t *testing.T) {
	cases := []struct {
		logicals []string
		host     string
		want     bool
	}{
		{[]string{"fame.fabric"}, "fame.fabric", true},
		{[]string{"fame.fabric"}, "x.fame.fabric", true},
		{[]string{"*.fame.fabric"}, "*.fame.fabric", true},
		{[]string{"*.fame.fabric"}, "fame.fabric", true},
		{[]string{"fame.fabric"}, "evil.example", false},
		{[]string{"fame.fabric"}, "notfame.fabric", false},
		{[]string{"*"}, "evil.example", true},
		{nil, "fame.fabric", false},
	}
	for _, c := range cases {
		if got := LogicalAllowed(c.logicals, c.host); got != c.want {
			t.Errorf("LogicalAllowed(%v, %q) = %v", c.logicals, c.host, got)
		}
	}
}

const sampleData = `{"version":"1.0","id":"HhuivJJuQ5gDQDsM","sid":"4lEOwRnZ5AggQ7Pc3eNzFk","traceId":"5bPds4cddbmEdcwH","to":"math@fame.fabric","replyTo":"__rpc__0oz6q8a7DfrosHAS@/WTps2sKZfgi0a5kw/jCPsDnt3zXGzmHvY","rtype":2,"corrId":"34peIerZWNdPWWkW","flowId":"8G61SDKE5aDqL3mA","seqId":1,"flowFlags":0,"frame":{"type":"Data","payload":{"jsonrpc":"2.0","id":"34peIerZWNdPWWkW","method":"add","params":{"x":3,"y":4}}},"ts":"2026-11-23T03:40:53.023Z"}`

func TestBadInput(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
	huge := `{"version":"1.0","id":"` + strings.Repeat("x", 10<<20) + `","frame":{"type":"Data"}}`
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrNotObject},
		{"truncated", sampleData[:len(sampleData)/2], ErrSyntax},
		{"array", `[1,2]`, ErrNotObject},
		{"string", `"x"`, ErrNotObject},
		{"no frame", `{"version":"1.0","id":"a"}`, ErrMissingFrame},
		{"frame not object", `{"frame":"Data"}`, ErrFieldType},
		{"no frame type", `{"frame":{"payload":1}}`, ErrMissingFrameType},
		{"frame type number", `{"frame":{"type":5}}`, ErrFieldType},
		{"frame type empty", `{"frame":{"type":""}}`, ErrMissingFrameType},
		{"id number", `{"id":5,"frame":{"type":"Data"}}`, ErrFieldType},
		{"seq string", `{"seqId":"1","frame":{"type":"Data"}}`, ErrFieldType},
		{"bad flow flags", `{"flowFlags":8,"frame":{"type":"Data"}}`, ErrFieldType},
		{"rtype float", `{"rtype":1.5,"frame":{"type":"Data"}}`, ErrFieldType},
		{"caps object", `{"capabilities":{},"frame":{"type":"Data"}}`, ErrFieldType},
		{"deep", `{"frame":{"type":"Data","payload":` + deep + `}}`, ErrTooDeep},
		{"too large", huge, ErrTooLarge},
		{"invalid utf8", "{\"id\":\"\xff\xfe\",\"frame\":{\"type\":\"Data\"}}", ErrInvalidUTF8},
		{"trailing", `{"frame":{"type":"Data"}} x`, ErrSyntax},
		{"bad escape", `{"id":"\q","frame":{"type":"Data"}}`, ErrSyntax},
		{"control char", "{\"id\":\"a\x01\",\"frame\":{\"type\":\"Data\"}}", ErrSyntax},
		{"bad number", `{"seqId":01,"frame":{"type":"Data"}}`, ErrSyntax},
		{"bad literal", `{"ttl":nul,"frame":{"type":"Data"}}`, ErrSyntax},
		{"missing colon", `{"id" "a","frame":{"type":"Data"}}`, ErrSyntax},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Errorf("Decode: got %v, want %v", err, c.want)
			}
			var h Header
			if err := ParseHeader([]byte(c.in), &h); err == nil {
				// The header parser does not type-check fields it does not read, but it must
				// refuse everything that is not a well-formed envelope.
				switch c.name {
				case "caps object", "rtype float":
				default:
					t.Errorf("ParseHeader accepted %s", c.name)
				}
			}
		})
	}
}

func TestUnknownFieldsKept(t *testing.T) {
	in := `{"version":"1.0","id":"a","future":{"x":[1,2]},"frame":{"type":"FutureFrame","z":1},"ts":"t","meta":{"set":{"aft":"tok"}}}`
	e, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := f.(*UnknownFrame); !ok || u.Type != "FutureFrame" {
		t.Fatalf("want UnknownFrame, got %#v", f)
	}
	out, _ := e.Marshal()
	if !bytes.Contains(out, []byte(`"future":{"x":[1,2]}`)) || !bytes.Contains(out, []byte(`"frame":{"type":"FutureFrame","z":1}`)) {
		t.Fatalf("unknown content lost: %s", out)
	}
}

func TestRestampMissingFields(t *testing.T) {
	cases := []string{
		`{"id":"a","frame":{"type":"Data"}}`,
		`{"id":"a","seqId":7,"frame":{"type":"Data"}}`,
		`{"id":"a","frame":{"type":"Data"},"flowFlags":1}`,
		`{"flow_flags":1,"id":"a","frame":{"type":"Data"}}`,
		`{ "id" : "a" , "frame" : {"type":"Data"} , "seq_id" : 3 }`,
		`{"seqId":1,"flowFlags":0,"frame":{"type":"Data"}}`,
		`{"frame":{"type":"Data"},"flowFlags":0,"seqId":1}`,
	}
	for _, in := range cases {
		var h Header
		if err := ParseHeader([]byte(in), &h); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out := Restamp(nil, []byte(in), &h, 42, FlowSyn)
		e, err := Decode(out)
		if err != nil {
			t.Fatalf("restamp of %s gave invalid %s: %v", in, out, err)
		}
		if e.SeqID != 42 || e.FlowFlags != FlowSyn || e.ID != "" && e.ID != "a" {
			t.Fatalf("restamp of %s gave %s", in, out)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		n := 0
		for k := range m {
			if k == "seqId" || k == "seq_id" || k == "flowFlags" || k == "flow_flags" {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("restamp of %s gave %d flow keys: %s", in, n, out)
		}
	}
}

func TestHeaderFields(t *testing.T) {
	in := `{"version":"1.0","id":"i","sid":"s","to":"math@fame.fabric","aft":"tok","frame":{"type":"SecureOpen","cid":"c1","address":"a@b"},"sec":{"sig":{"val":"x"},"enc":{"alg":"x","kid":"chan-1","val":"v"}},"meta":{"set":{"aft":"m"}}}`
	var h Header
	if err := ParseHeader([]byte(in), &h); err != nil {
		t.Fatal(err)
	}
	if string(h.FrameType) != "SecureOpen" || string(h.FrameCID) != "c1" || string(h.EncKID) != "chan-1" ||
		!h.HasSig || string(h.AFT) != "tok" || string(h.Meta) != `{"set":{"aft":"m"}}` || string(h.FrameAddress) != "a@b" {
		t.Fatalf("header: %+v", h)
	}
	esc := `{"to":"math\u0040fame.fabric","frame":{"type":"Data"}}`
	if err := ParseHeader([]byte(esc), &h); err != nil || string(h.To) != "math@fame.fabric" {
		t.Fatalf("escaped to: %q %v", h.To, err)
	}
}

func TestNewEnvelopeFrames(t *testing.T) {
	ack := NewNodeAttachAck("ref", "sent", "/sent/child", "/sent", "epoch")
	e, err := New(ack)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"NodeAttachAck","ok":true,"refId":"ref","targetSystemId":"sent","assignedPath":"/sent/child","targetPhysicalPath":"/sent","routingEpoch":"epoch","ref_id":"ref","target_system_id":"sent","target_physical_path":"/sent","routing_epoch":"epoch","assigned_path":"/sent/child"}`
	if string(e.Frame) != want {
		t.Fatalf("frame:\n%s\nwant\n%s", e.Frame, want)
	}
	nack, _ := EncodeFrame(&DeliveryAck{Ack{OK: false, Code: CodeNoRoute, Reason: "Unroutable to math@fame.fabric", RefID: "Kc9QJb9ChMD7DJpy"}})
	if string(nack) != `{"type":"DeliveryAck","ok":false,"code":"NO_ROUTE","reason":"Unroutable to math@fame.fabric","refId":"Kc9QJb9ChMD7DJpy"}` {
		t.Fatalf("nack: %s", nack)
	}
	// ok defaults to true when absent, as in the reference schema.
	f, err := ParseFrame(json.RawMessage(`{"type":"DeliveryAck","refId":"x"}`))
	if err != nil || !f.(*DeliveryAck).OK {
		t.Fatalf("ok default: %#v %v", f, err)
	}
}
