package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

func callsServed(t *testing.T, client *node.Node, want string) {
	t.Helper()
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var who string
		err := client.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who)
		cancel()
		if err != nil || who != want {
			t.Fatalf("call %d: %q, %v", i, who, err)
		}
	}
}

// TestNodeChannelsExpireAndCloseOnExit: secure channels unused for the idle timeout are
// dropped on both ends (the client's replaced on the next call), and a client that closes
// sends SecureClose, so the replica keeps no channel for a departed client.
func TestNodeChannelsExpireAndCloseOnExit(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay"})
	sec := func(c *node.Config) { c.SecurityProfile, c.EncryptionLevel = "overlay", "channel" }
	// The replica keeps the default idle timeout (10 min): what it drops here, it drops
	// because the client said so (SecureClose on idle expiry, then on exit).
	replica := f.startReplica("replica1", "*.fame.fabric", nil, sec)
	ccfg := f.nodeConfig()
	sec(&ccfg)
	ccfg.ChannelIdleTimeout = 300 * time.Millisecond
	client := f.connect(ccfg)
	whoami(t, client)
	if replica.SecureChannels() != 1 || client.SecureChannels() != 1 {
		t.Fatalf("channels: replica %d, client %d, want 1 each", replica.SecureChannels(), client.SecureChannels())
	}
	waitUntil(t, 5*time.Second, "idle channels expired on both ends", func() bool {
		return replica.SecureChannels() == 0 && client.SecureChannels() == 0
	})
	callsServed(t, client, "replica1")

	// A second client without expiry (the default, 10 min) leaves: its channel goes with it.
	c2cfg := f.nodeConfig()
	c2cfg.SecurityProfile, c2cfg.EncryptionLevel = "overlay", "channel"
	c2 := f.connect(c2cfg)
	whoami(t, c2)
	held := replica.SecureChannels()
	if held < 1 {
		t.Fatalf("replica holds %d channels", held)
	}
	c2.Close()
	waitUntil(t, 5*time.Second, "replica dropped the departed client's channel", func() bool {
		return replica.SecureChannels() == held-1
	})
	callsServed(t, client, "replica1")
}

// TestNodeHandlerOverload: a raw peer floods a replica limited to 1 running handler and 1
// queued request; the third request is refused at once with OVERLOADED, counted, and the
// replica serves a real client afterwards.
func TestNodeHandlerOverload(t *testing.T) {
	f := newFabric(t, nil)
	replica := f.startReplica("replica1", "*.fame.fabric", nil, func(c *node.Config) { c.MaxHandlers, c.HandlerQueue = 1, 1 })
	client := f.connect(f.nodeConfig())
	whoami(t, client)

	flood := dialRaw(t, f, "flooder", nil)
	flood.attach()
	var sent []*envelope.Envelope
	for i := range 3 {
		sent = append(sent, flood.call(mathagent.Address, `{"jsonrpc":"2.0","id":"`+string(rune('a'+i))+`","method":"record","params":{"key":"k`+string(rune('a'+i))+`","sleep_ms":1500}}`))
	}
	ack := flood.next(envelope.TypeDeliveryAck, 10*time.Second)
	if code := nackCode(t, ack); code != envelope.CodeOverloaded {
		t.Fatalf("nack %q, want %q", code, envelope.CodeOverloaded)
	}
	fr, _ := ack.DecodeFrame()
	if ref := fr.(*envelope.DeliveryAck).RefID; ref != sent[2].ID {
		t.Fatalf("nack refers to %s, want the third request %s", ref, sent[2].ID)
	}
	if got := replica.Refusals()[node.RefusedOverloaded]; got != 1 {
		t.Fatalf("overloaded refusals %d, want 1", got)
	}
	// The two admitted requests complete.
	for range 2 {
		if e := flood.next(envelope.TypeData, 10*time.Second); e == nil {
			t.Fatal("an admitted request was not answered")
		}
	}
	callsServed(t, client, "replica1")
}

// TestNodeReplayWindow: a signed request re-sent byte for byte is refused once the replica's
// guard forgot its id (after ReplayCacheSize other ids) and after the replay window, both
// counted as stale; the replica still serves a real client.
func TestNodeReplayWindow(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay"})
	replica := f.startReplica("replica1", "*.fame.fabric", nil, func(c *node.Config) {
		c.SecurityProfile, c.ReplayWindow, c.ReplayCacheSize = "overlay", 2*time.Second, 4
	})
	ccfg := f.nodeConfig()
	ccfg.SecurityProfile = "overlay"
	client := f.connect(ccfg)

	p := newSignedRaw(t, f, "replayer")
	ask := func() []byte {
		b := p.request(mathagent.Address, "whoami")
		if p.next(envelope.TypeData, 10*time.Second) == nil {
			t.Fatal("no reply")
		}
		return b
	}
	first := ask()
	// Byte-for-byte replay right away: refused by id.
	if err := p.sendRaw(first); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "immediate replay refused", func() bool { return replica.Refusals()[node.RefusedReplay] == 1 })
	for range 4 {
		ask()
	}
	if err := p.sendRaw(first); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "replay after 4 other ids refused", func() bool { return replica.Refusals()[node.RefusedStale] == 1 })
	last := ask()
	time.Sleep(2100 * time.Millisecond)
	if err := p.sendRaw(last); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "replay after the window refused", func() bool { return replica.Refusals()[node.RefusedStale] == 2 })
	// The same bytes with ts rewritten to now (ts is not signed): the window cannot see it,
	// the id can: the guard still remembers the id of this sender's last envelope.
	if err := p.sendRaw(rewriteTS(t, last, time.Now())); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "replay with a rewritten ts refused", func() bool { return replica.Refusals()[node.RefusedReplay] == 2 })
	if e := p.next(envelope.TypeData, 300*time.Millisecond); e != nil {
		var v json.RawMessage = e.Frame
		t.Fatalf("a replayed request was answered: %s", v)
	}
	callsServed(t, client, "replica1")
}
