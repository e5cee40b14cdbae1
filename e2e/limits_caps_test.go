package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/sentinel"
)

// Each per-connection bound refuses with LIMIT_EXCEEDED (or OVERLOADED for requests) and a
// reason, counts the refusal, and leaves everyone else served. The bounds are set low here; the
// defaults are 256 routes, 1,024 capability entries, 64 keys, 65,536 pending requests.

func refusals(t *testing.T, f *fabric, reason string) float64 {
	t.Helper()
	return f.metric(t, "fame_limit_refusals_total", `reason="`+reason+`"`)
}

func TestLimitRoutes(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_MAX_ROUTES": "4"})
	f.startReplica("victim", "fame.fabric", nil, nil) // binds math@fame.fabric
	attacker := dialRaw(t, f, "hoarder", nil)
	attacker.attach("fame.fabric")
	for i := 0; i < 4; i++ {
		if ack := attacker.bind(fmt.Sprintf("a%d@fame.fabric", i)); !ack.OK {
			t.Fatalf("bind %d under the limit refused: %+v", i, ack)
		}
	}
	if ack := attacker.bind("a0@fame.fabric"); !ack.OK {
		t.Fatalf("re-binding a held address counts again: %+v", ack)
	}
	ack := attacker.bind("a4@fame.fabric")
	if ack.OK || ack.Code != sentinel.CodeLimitExceeded || !strings.Contains(ack.Reason, "at most 4 addresses") {
		t.Fatalf("fifth address: %+v, want %s", ack, sentinel.CodeLimitExceeded)
	}
	if ack := attacker.bind("pool@*.fame.fabric"); ack.OK || ack.Code != sentinel.CodeLimitExceeded {
		t.Fatalf("a pool membership past the limit was accepted: %+v", ack)
	}
	if n := refusals(t, f, "routes"); n != 2 {
		t.Fatalf("routes refusals counted %v, want 2", n)
	}
	// Unbinding gives the slot back.
	attacker.sendFrame(&envelope.AddressUnbind{Address: "a1@fame.fabric"}, func(e *envelope.Envelope) {
		e.ReplyTo, e.RType = "__sys__@"+attacker.path, envelope.RTypeAck
	})
	attacker.recv()
	if ack := attacker.bind("a4@fame.fabric"); !ack.OK {
		t.Fatalf("bind after unbind: %+v", ack)
	}
	victimServes(t, f, nil)
}

func TestLimitCapabilities(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_MAX_CAPABILITIES": "3"})
	f.startReplica("victim", "fame.fabric", nil, nil)
	attacker := dialRaw(t, f, "advertiser", nil)
	attacker.attach("fame.fabric")
	if ack := attacker.bind("adv@fame.fabric"); !ack.OK { // capabilities only for an address it owns
		t.Fatalf("bind: %+v", ack)
	}
	advertise := func(caps ...string) *envelope.CapabilityAdvertiseAck {
		attacker.sendFrame(&envelope.CapabilityAdvertise{Address: "adv@fame.fabric", Capabilities: caps}, func(e *envelope.Envelope) {
			e.ReplyTo, e.RType = "__sys__@"+attacker.path, envelope.RTypeAck
		})
		fr, _ := attacker.recv().DecodeFrame()
		ack, ok := fr.(*envelope.CapabilityAdvertiseAck)
		if !ok {
			t.Fatalf("want CapabilityAdvertiseAck, got %T", fr)
		}
		return ack
	}
	if ack := advertise("c1", "c2"); !ack.OK {
		t.Fatalf("two entries: %+v", ack)
	}
	if ack := advertise("c1", "c2", "c3"); !ack.OK {
		t.Fatalf("one new entry, three held: %+v", ack)
	}
	ack := advertise("c4")
	if ack.OK || ack.Code != sentinel.CodeLimitExceeded || !strings.Contains(ack.Reason, "at most 3 capability entries") {
		t.Fatalf("fourth entry: %+v", ack)
	}
	if n := refusals(t, f, "capabilities"); n != 1 {
		t.Fatalf("capabilities refusals counted %v, want 1", n)
	}
	victimServes(t, f, nil)
}

func TestLimitKeys(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_MAX_KEYS": "2"})
	keys := func(n int) []json.RawMessage {
		var out []json.RawMessage
		for i := 0; i < n; i++ {
			pub, _, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(security.SigningJWK(pub, envelope.NewID()))
			out = append(out, b)
		}
		return out
	}
	attacker := dialRaw(t, f, "keyhoarder", nil)
	ack := attacker.attachAck(func(na *envelope.NodeAttach) { na.Keys = keys(3) }, "fame.fabric")
	if ack.OK || !strings.Contains(ack.Reason, "exceed the limit of 2") {
		t.Fatalf("attach with 3 keys: %+v", ack)
	}
	if n := refusals(t, f, "keys"); n != 1 {
		t.Fatalf("keys refusals counted %v, want 1", n)
	}
	ok := dialRaw(t, f, "twokeys", nil)
	if ack := ok.attachAck(func(na *envelope.NodeAttach) { na.Keys = keys(2) }, "fame.fabric"); !ack.OK {
		t.Fatalf("attach with 2 keys: %+v", ack)
	}
	overlay := func(c *node.Config) { c.SecurityProfile = "overlay" }
	f.startReplica("victim", "fame.fabric", nil, overlay)
	cfg := f.nodeConfig()
	overlay(&cfg)
	victimServes(t, f, f.connect(cfg))
}

func TestLimitPending(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_MAX_PENDING": "3"})
	f.startReplica("victim", "fame.fabric", nil, nil)
	sink := dialRaw(t, f, "sink", nil)
	sink.attach("fame.fabric")
	if ack := sink.bind("hold@fame.fabric"); !ack.OK {
		t.Fatal(ack)
	}
	caller := dialRaw(t, f, "caller", nil)
	caller.attach()
	for i := 0; i < 3; i++ {
		caller.call("hold@fame.fabric", `{"jsonrpc":"2.0","id":1,"method":"never"}`)
		sink.recv() // held: the sink never answers
	}
	req := caller.call("hold@fame.fabric", `{"jsonrpc":"2.0","id":1,"method":"never"}`)
	nack := nackOf(t, caller.recv())
	if nack.OK || nack.Code != envelope.CodeOverloaded || nack.RefID != req.ID || !strings.Contains(nack.Reason, "too many requests open") {
		t.Fatalf("fourth open request: %+v, want OVERLOADED for %s", nack, req.ID)
	}
	if n := refusals(t, f, "pending"); n != 1 {
		t.Fatalf("pending refusals counted %v, want 1", n)
	}
	if p := f.pendingOn(t, "sink"); p != 3 {
		t.Fatalf("sink holds %d pending, want 3", p)
	}
	victimServes(t, f, nil)
}

func TestLimitConnections(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_MAX_CONNECTIONS": "3"})
	var held []*rawPeer
	for i := 0; i < 3; i++ {
		held = append(held, dialRaw(t, f, fmt.Sprintf("c%d", i), nil))
	}
	code, body := dialStatus(t, f, "c3")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "connection limit") {
		t.Fatalf("fourth connection: %d %q, want 503 with the reason", code, body)
	}
	if n := refusals(t, f, "connections"); n != 1 {
		t.Fatalf("connections refusals counted %v, want 1", n)
	}
	for _, p := range held {
		_ = p.ws.CloseNow()
	}
	waitUntil(t, 5*time.Second, "connections released", func() bool { return f.metric(t, "fame_connections") == 0 })
	f.startReplica("victim", "fame.fabric", nil, nil)
	victimServes(t, f, nil)
}

func TestLimitAttachRate(t *testing.T) {
	// Loopback is exempt unless configured: the same burst from 127.0.0.1 goes through.
	open := newFabric(t, map[string]string{"FAME_ATTACH_RATE": "1", "FAME_ATTACH_BURST": "1"})
	for i := 0; i < 3; i++ {
		if code, body := dialStatus(t, open, fmt.Sprintf("l%d", i)); code != http.StatusSwitchingProtocols {
			t.Fatalf("loopback attach %d refused: %d %s", i, code, body)
		}
	}

	f := newFabric(t, map[string]string{"FAME_ATTACH_RATE": "2", "FAME_ATTACH_BURST": "3", "FAME_ATTACH_RATE_LOOPBACK": "true"})
	for i := 0; i < 3; i++ {
		if code, body := dialStatus(t, f, fmt.Sprintf("r%d", i)); code != http.StatusSwitchingProtocols {
			t.Fatalf("attach %d within the burst refused: %d %s", i, code, body)
		}
	}
	code, body := dialStatus(t, f, "r3")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "attach rate limit") {
		t.Fatalf("attach past the burst: %d %q, want 429 with the reason", code, body)
	}
	if n := refusals(t, f, "attach_rate"); n < 1 {
		t.Fatalf("attach_rate refusals counted %v", n)
	}
	time.Sleep(1500 * time.Millisecond) // the bucket refills at 2/s: room for the victim's two attaches
	f.startReplica("victim", "fame.fabric", nil, nil)
	victimServes(t, f, nil)
}
