package envelope

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// env builds an envelope from top-level members written as raw JSON ("key":value pairs),
// adding a frame unless one is given.
func env(members ...string) []byte {
	body := strings.Join(members, ",")
	if !strings.Contains(body, `"frame"`) && !strings.Contains(body, `"`+escapeAll("frame")+`"`) {
		if body != "" {
			body += ","
		}
		body += `"frame":{"type":"Data","payload":{}}`
	}
	return []byte("{" + body + "}")
}

// both runs ParseHeader and Decode and requires both to fail with want, or both to succeed.
func both(t *testing.T, msg []byte, want error) {
	t.Helper()
	var h Header
	herr := ParseHeader(msg, &h)
	_, derr := Decode(msg)
	if want == nil {
		if herr != nil || derr != nil {
			t.Fatalf("%s: want accepted, ParseHeader %v, Decode %v", msg, herr, derr)
		}
		return
	}
	if !errors.Is(herr, want) || !errors.Is(derr, want) {
		t.Fatalf("%s: want %v from both, ParseHeader %v, Decode %v", msg, want, herr, derr)
	}
}

// aliasPairs are every pair of spellings the decoder accepts for one top-level key.
var aliasPairs = [][2]string{
	{"traceId", "trace_id"}, {"replyTo", "reply_to"}, {"corrId", "corr_id"},
	{"flowId", "flow_id"}, {"seqId", "seq_id"}, {"flowFlags", "flow_flags"},
}

// sampleValue is a value of the right type for a top-level key.
func sampleValue(k string) string {
	switch topKey([]byte(k)) {
	case kRType, kSeqID, kFlowFlags, kTTL:
		return "1"
	case kCapabilities:
		return `["a"]`
	case kFrame:
		return `{"type":"Data"}`
	case kSec:
		return `{"sig":{"kid":"k","val":"v"}}`
	case kMeta:
		return `{"x":1}`
	}
	return `"a@b"`
}

// escapeAll writes every byte of k as a \u escape.
func escapeAll(k string) string {
	var b strings.Builder
	for _, c := range []byte(k) {
		fmt.Fprintf(&b, `\u%04x`, c)
	}
	return b.String()
}

func TestDuplicateTopLevelKeys(t *testing.T) {
	for _, n := range topNames {
		k, v := n.name, sampleValue(n.name)
		t.Run(k, func(t *testing.T) {
			first := fmt.Sprintf(`"%s":%s`, k, v)
			both(t, env(first), nil)
			both(t, env(first, first), ErrDuplicateKey)
			// Escaped spellings are the same key once unescaped, in either order.
			esc := fmt.Sprintf(`"%s":%s`, escapeAll(k), v)
			both(t, env(esc), nil)
			both(t, env(first, esc), ErrDuplicateKey)
			both(t, env(esc, first), ErrDuplicateKey)
		})
	}
}

func TestDuplicateAliasKeys(t *testing.T) {
	for _, p := range aliasPairs {
		v := sampleValue(p[0])
		a := fmt.Sprintf(`"%s":%s`, p[0], v)
		b := fmt.Sprintf(`"%s":%s`, p[1], v)
		bEsc := fmt.Sprintf(`"%s":%s`, escapeAll(p[1]), v)
		t.Run(p[0]+"/"+p[1], func(t *testing.T) {
			both(t, env(a), nil)
			both(t, env(b), nil)
			both(t, env(a, b), ErrDuplicateKey)
			both(t, env(b, a), ErrDuplicateKey)
			both(t, env(a, bEsc), ErrDuplicateKey)
			both(t, env(bEsc, a), ErrDuplicateKey)
		})
	}
}

// TestEscapedToIsRoutedAsDecoded is the attack of issue 12: "to" twice, once escaped, must
// not give the router one address and the verifier another; once alone, both read it.
func TestEscapedToIsRoutedAsDecoded(t *testing.T) {
	for _, msg := range [][]byte{
		env(`"to":"math@fame.fabric"`, `"t\u006f":"evil@fame.fabric"`),
		env(`"t\u006f":"evil@fame.fabric"`, `"to":"math@fame.fabric"`),
	} {
		both(t, msg, ErrDuplicateKey)
	}
	msg := env(`"t\u006f":"math@fame.fabric"`)
	var h Header
	if err := ParseHeader(msg, &h); err != nil {
		t.Fatal(err)
	}
	e, err := Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(h.To) != "math@fame.fabric" || e.To != "math@fame.fabric" {
		t.Fatalf("escaped key read differently: header %q, decode %q", h.To, e.To)
	}
}

func TestDuplicateKeysNested(t *testing.T) {
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		// frame
		{"frame type twice", env(`"frame":{"type":"Data","type":"SecureOpen"}`), ErrDuplicateKey},
		{"frame type escaped", env(`"frame":{"type":"Data","typ\u0065":"SecureOpen"}`), ErrDuplicateKey},
		{"frame cid twice", env(`"frame":{"type":"Data","cid":"a","cid":"b"}`), ErrDuplicateKey},
		{"frame cid escaped", env(`"frame":{"type":"Data","c\u0069d":"a","cid":"b"}`), ErrDuplicateKey},
		{"frame cid case", env(`"frame":{"type":"Data","CID":"a"}`), ErrAmbiguousKey},
		{"frame Cid case escaped", env(`"frame":{"type":"Data","\u0043id":"a"}`), ErrAmbiguousKey},
		{"frame Type case", env(`"frame":{"Type":"Data","type":"Data"}`), ErrAmbiguousKey},
		{"frame address twice", env(`"frame":{"type":"AddressBind","address":"a@b","address":"c@d"}`), ErrDuplicateKey},
		{"frame address case", env(`"frame":{"type":"AddressBind","Address":"a@b"}`), ErrAmbiguousKey},
		{"frame flowId twice", env(`"frame":{"type":"CreditUpdate","flowId":"f","flowId":"g","credits":1}`), ErrDuplicateKey},
		{"frame flowid case", env(`"frame":{"type":"CreditUpdate","flowid":"f","credits":1}`), ErrAmbiguousKey},
		{"frame credits twice", env(`"frame":{"type":"CreditUpdate","flowId":"f","credits":1,"credits":2}`), ErrDuplicateKey},
		{"frame payload twice", env(`"frame":{"type":"Data","payload":1,"payload":2}`), ErrDuplicateKey},
		{"frame pd twice", env(`"frame":{"type":"Data","pd":"a","pd":"b"}`), ErrDuplicateKey},
		{"frame other key twice", env(`"frame":{"type":"NodeAttach","systemId":"a","systemId":"b"}`), ErrDuplicateKey},
		{"frame snake and camel differ", env(`"frame":{"type":"NodeAttachAck","refId":"a","ref_id":"a"}`), nil},
		// Any key folding to a field of some frame type (KeyRequest's kid here) is refused:
		// encoding/json would fill that field, the reference would not.
		{"frame kelvin sign", env(`"frame":{"type":"Data","\u212aid":"x"}`), ErrAmbiguousKey},
		{"frame not a field, kelvin", env(`"frame":{"type":"Data","\u212aqz":"x"}`), nil},
		{"KeyAnnounce path and its case variant", env(`"frame":{"type":"KeyAnnounce","physicalPath":"/victim","PhysicalPath":"/mallory"}`), ErrAmbiguousKey},
		{"KeyAnnounce lone case variant", env(`"frame":{"type":"KeyAnnounce","physicalpath":"/mallory"}`), ErrAmbiguousKey},
		{"KeyAnnounce escaped case variant", env(`"frame":{"type":"KeyAnnounce","physicalPath":"/v","\u0050hysicalPath":"/m"}`), ErrAmbiguousKey},
		{"KeyAnnounce kelvin keys", env(`"frame":{"type":"KeyAnnounce","physicalPath":"/v","\u212aeys":[]}`), ErrAmbiguousKey},
		{"Data Payload", env(`"frame":{"type":"Data","Payload":1}`), ErrAmbiguousKey},
		{"NodeAttach SystemId", env(`"frame":{"type":"NodeAttach","SystemId":"a"}`), ErrAmbiguousKey},
		{"KeyAnnounce exact", env(`"frame":{"type":"KeyAnnounce","physicalPath":"/v","keys":[]}`), nil},
		{"frame unknown key", env(`"frame":{"type":"KeyAnnounce","physicalPath":"/v","extra":1}`), nil},
		// sec
		{"sec sig twice", env(`"sec":{"sig":{"kid":"a","val":"v"},"sig":{"kid":"b","val":"v"}}`), ErrDuplicateKey},
		{"sec sig escaped", env(`"sec":{"sig":{"kid":"a","val":"v"},"s\u0069g":{"kid":"b","val":"v"}}`), ErrDuplicateKey},
		{"sec SIG case", env(`"sec":{"SIG":{"kid":"a","val":"v"}}`), ErrAmbiguousKey},
		{"sec enc twice", env(`"sec":{"enc":{"kid":"a"},"enc":{"kid":"b"}}`), ErrDuplicateKey},
		{"sec unknown twice", env(`"sec":{"x":1,"x":2}`), ErrDuplicateKey},
		{"sig kid twice", env(`"sec":{"sig":{"kid":"a","kid":"b","val":"v"}}`), ErrDuplicateKey},
		{"sig kid escaped", env(`"sec":{"sig":{"kid":"a","\u006bid":"b","val":"v"}}`), ErrDuplicateKey},
		{"sig Kid case", env(`"sec":{"sig":{"Kid":"a","val":"v"}}`), ErrAmbiguousKey},
		{"sig kelvin kid", env(`"sec":{"sig":{"\u212aid":"a","val":"v"}}`), ErrAmbiguousKey},
		{"sig val twice", env(`"sec":{"sig":{"kid":"a","val":"v","val":"w"}}`), ErrDuplicateKey},
		{"sig alg twice", env(`"sec":{"sig":{"kid":"a","val":"v","alg":"EdDSA","alg":"x"}}`), ErrDuplicateKey},
		{"enc kid twice", env(`"sec":{"enc":{"alg":"x","kid":"a","kid":"b"}}`), ErrDuplicateKey},
		{"enc val twice", env(`"sec":{"enc":{"kid":"a","val":"1","val":"2"}}`), ErrDuplicateKey},
		{"enc ALG case", env(`"sec":{"enc":{"kid":"a","ALG":"x"}}`), ErrAmbiguousKey},
		{"sec well formed", env(`"sec":{"sig":{"kid":"a","val":"v","alg":"EdDSA"},"enc":{"alg":"x","kid":"c","val":"1"}}`), nil},
		{"sec null", env(`"sec":null`), nil},
		{"sec wrong type", env(`"sec":5`), ErrFieldType},
		// meta
		{"meta set twice", env(`"meta":{"set":{},"set":{"aft":"t"}}`), ErrDuplicateKey},
		{"meta aft twice", env(`"meta":{"set":{"aft":"a","aft":"b"}}`), ErrDuplicateKey},
		{"meta aft escaped", env(`"meta":{"set":{"aft":"a","\u0061ft":"b"}}`), ErrDuplicateKey},
		{"meta AFT case", env(`"meta":{"set":{"AFT":"a"}}`), ErrAmbiguousKey},
		{"meta Set case", env(`"meta":{"Set":{"aft":"a"}}`), ErrAmbiguousKey},
		{"meta flat aft twice", env(`"meta":{"set.aft":"a","set.aft":"b"}`), ErrDuplicateKey},
		{"meta aft escaped alone", env(`"meta":{"set":{"\u0061ft":"a"}}`), ErrAmbiguousKey},
		{"meta flat aft escaped", env(`"meta":{"set.\u0061ft":"a"}`), ErrAmbiguousKey},
		{"meta set escaped", env(`"meta":{"\u0073et":{"aft":"a"}}`), nil}, // still has a plain "aft"
		{"meta user key twice", env(`"meta":{"u":1,"u":2}`), ErrDuplicateKey},
		{"meta deep user data", env(`"meta":{"u":{"a":1,"a":2,"A":3}}`), nil},
		{"meta set other keys", env(`"meta":{"set":{"aft":"a","x":1}}`), nil},
		{"meta wrong type", env(`"meta":[]`), ErrFieldType},
		// top level, other
		{"top case differs", env(`"to":"a@b"`, `"To":"c@d"`), nil}, // "To" is an unknown key to every reader
		{"top unknown twice", env(`"x":1`, `"x":2`), ErrDuplicateKey},
		{"top unknown escaped", env(`"x":1`, `"\u0078":2`), ErrDuplicateKey},
		{"capabilities not strings", env(`"capabilities":[1]`), ErrFieldType},
		{"ttl not int", env(`"ttl":"x"`), ErrFieldType},
		{"version not string", env(`"version":1`), ErrFieldType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { both(t, c.msg, c.want) })
	}
}

// TestManyUnknownKeys covers the switch from the fixed array to the map.
func TestManyUnknownKeys(t *testing.T) {
	var ms []string
	for i := range 40 {
		ms = append(ms, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	both(t, env(ms...), nil)
	for _, at := range []int{3, 8, 9, 39} {
		dup := append(append([]string{}, ms...), fmt.Sprintf(`"k%d":0`, at))
		both(t, env(dup...), ErrDuplicateKey)
	}
	var fr []string
	for i := range 20 {
		fr = append(fr, fmt.Sprintf(`"f%d":%d`, i, i))
	}
	both(t, env(`"frame":{"type":"X",`+strings.Join(fr, ",")+`}`), nil)
	both(t, env(`"frame":{"type":"X",`+strings.Join(fr, ",")+`,"f11":0}`), ErrDuplicateKey)
}

func TestCheckSec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{``, nil},
		{`null`, nil},
		{`{"sig":{"kid":"a","val":"v"}}`, nil},
		{` {"sig":{"kid":"a","val":"v"},"sig":{"kid":"b","val":"v"}} `, ErrDuplicateKey},
		{`{"sig":{"kid":"a","kid":"b","val":"v"}}`, ErrDuplicateKey},
		{`{"enc":{"kid":"a","Kid":"b"}}`, ErrAmbiguousKey},
	} {
		if err := CheckSec([]byte(c.in)); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("CheckSec(%s) = %v, want %v", c.in, err, c.want)
		}
	}
	e, err := Decode(env(`"sec":{"sig":{"kid":"a","val":"v"}}`))
	if err != nil {
		t.Fatal(err)
	}
	e.Sec = []byte(`{"sig":{"kid":"a","val":"v","val":"w"}}`) // set after decoding
	if _, err := e.ParseSec(); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("Envelope.ParseSec of a duplicated val: %v", err)
	}
}

// TestTopKeyTable checks the perfect hash against the switch it replaced: every name maps to
// its index, and near misses (other case, other length, a prefix) map to nothing.
func TestTopKeyTable(t *testing.T) {
	for _, n := range topNames {
		if got := topKey([]byte(n.name)); got != int(n.idx) {
			t.Errorf("topKey(%q) = %d, want %d", n.name, got, n.idx)
		}
		for _, miss := range []string{strings.ToUpper(n.name), n.name + "x", n.name[:len(n.name)-1], "_" + n.name} {
			if got := topKey([]byte(miss)); got != kUnknown {
				t.Errorf("topKey(%q) = %d, want unknown", miss, got)
			}
		}
	}
	if topKey(nil) != kUnknown {
		t.Error("empty key is known")
	}
}

func TestUnderPath(t *testing.T) {
	for _, c := range []struct {
		path, prefix string
		want         bool
	}{
		{"/a", "/a", true}, {"/a/b", "/a", true}, {"/a/b/c", "/a/b", true},
		{"/ab", "/a", false}, {"/a", "/a/b", false}, {"/b/a", "/a", false},
		{"/a", "", false}, {"", "", false}, {"/a", "/", false}, {"/", "/", false},
		{"/a/", "/a", true}, {"", "/a", false},
	} {
		if got := UnderPath(c.path, c.prefix); got != c.want {
			t.Errorf("UnderPath(%q, %q) = %v, want %v", c.path, c.prefix, got, c.want)
		}
	}
}
