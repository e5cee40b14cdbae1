package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"

	"github.com/fame-go/fame/security/aft"
)

func overlay(level string) func(*Config) {
	return func(c *Config) {
		c.SecurityProfile = "overlay"
		c.EncryptionLevel = level
		c.KeyRequestTimeout = 100 * time.Millisecond
	}
}

func overlaySentinel(t *testing.T) *fakeSentinel {
	f := newFakeSentinel(t)
	f.overlay = newFakeSec(t)
	return f
}

// overlayBubbleSentinel is overlaySentinel over in-memory pipes (see newBubbleSentinel).
func overlayBubbleSentinel(t *testing.T) *fakeSentinel {
	f := newBubbleSentinel(t)
	f.overlay = newFakeSec(t)
	return f
}

// framesOf returns what child sent, of one frame type.
func framesOf(f *fakeSentinel, child, typ string) []*envelope.Envelope {
	var out []*envelope.Envelope
	for _, e := range f.received(child) {
		if e.FrameType() == typ {
			out = append(out, e)
		}
	}
	return out
}

func add(t *testing.T, n *Node, x, y int) (int, error) {
	t.Helper()
	var sum int
	err := n.Call(context.Background(), "math@fame.fabric", "add", map[string]int{"x": x, "y": y}, &sum)
	return sum, err
}

func TestOverlaySigningRoundTrip(t *testing.T) {
	f := overlaySentinel(t)
	agent, client := agentAndClient(t, f, overlay(""))
	for i := 0; i < 3; i++ {
		if sum, err := add(t, client, i, 10); err != nil || sum != i+10 {
			t.Fatalf("add = %d, %v", sum, err)
		}
	}
	// Everything after NodeAttach is signed with the key announced in NodeAttach, and the
	// sentinel's key store (filled from NodeAttach) verifies every signature.
	for _, n := range []*Node{agent, client} {
		got := f.received(n.SystemID())
		if got[0].FrameType() != envelope.TypeNodeAttach || got[0].Sec != nil {
			t.Errorf("%s: first envelope %s sec=%s, want unsigned NodeAttach", n.SystemID(), got[0].FrameType(), got[0].Sec)
		}
		for _, e := range got[1:] {
			if e.FrameType() == envelope.TypeCreditUpdate {
				continue
			}
			if _, err := f.overlay.keys.Verify(e, e.FrameType() == envelope.TypeData); err != nil {
				t.Errorf("%s from %s: %v", e.FrameType(), n.SystemID(), err)
			}
		}
	}
	// The agent did not know the client's key: it asked the sentinel for it by kid.
	reqs := framesOf(f, agent.SystemID(), envelope.TypeKeyRequest)
	if len(reqs) != 1 {
		t.Fatalf("agent sent %d KeyRequests, want 1", len(reqs))
	}
	fr, _ := reqs[0].DecodeFrame()
	kr := fr.(*envelope.KeyRequest)
	if kr.Kid != client.sec.signer.Kid || kr.PhysicalPath != agent.AssignedPath() {
		t.Errorf("KeyRequest %+v, want kid %s path %s", kr, client.sec.signer.Kid, agent.AssignedPath())
	}
}

func TestKeyRequestTimeoutFailsCall(t *testing.T) {
	f := overlaySentinel(t)
	var clientID string
	f.overlay.answer = func(child string) bool { return child != clientID }
	_, client := agentAndClient(t, f, overlay(""))
	clientID = client.SystemID()
	start := time.Now()
	_, err := add(t, client, 1, 2)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v, want about 3 x 100ms", d)
	}
	if n := len(framesOf(f, clientID, envelope.TypeKeyRequest)); n != 3 {
		t.Errorf("client sent %d KeyRequests, want 3 attempts", n)
	}
}

func TestTamperedPayloadRefused(t *testing.T) {
	f := overlaySentinel(t)
	f.tamper = func(e *envelope.Envelope) {
		if e.FrameType() == envelope.TypeData && strings.HasPrefix(e.To, "math@") {
			e.Frame = json.RawMessage(strings.Replace(string(e.Frame), `"x":1`, `"x":9`, 1))
		}
	}
	_, client := agentAndClient(t, f, overlay(""))
	_, err := add(t, client, 1, 2)
	var nack *NackError
	if !errors.As(err, &nack) || nack.Code != codeSignatureFailed {
		t.Fatalf("err = %v, want a %s nack", err, codeSignatureFailed)
	}
}

func TestUnsignedRequestRefused(t *testing.T) {
	f := overlaySentinel(t)
	f.tamper = func(e *envelope.Envelope) {
		if e.FrameType() == envelope.TypeData && strings.HasPrefix(e.To, "math@") {
			e.Sec = nil
		}
	}
	_, client := agentAndClient(t, f, overlay(""))
	_, err := add(t, client, 1, 2)
	var nack *NackError
	if !errors.As(err, &nack) || nack.Code != codeSignatureRequired {
		t.Fatalf("err = %v, want a %s nack", err, codeSignatureRequired)
	}
}

func encOf(t *testing.T, e *envelope.Envelope) *envelope.Encryption {
	t.Helper()
	sec, err := security.ParseSec(e.Sec)
	if err != nil || sec == nil {
		return nil
	}
	return sec.Enc
}

func TestChannelEncryptedCall(t *testing.T) {
	f := overlaySentinel(t)
	agent, client := agentAndClient(t, f, overlay("channel"))
	for i := 0; i < 3; i++ {
		if sum, err := add(t, client, 20, i); err != nil || sum != 20+i {
			t.Fatalf("add = %d, %v", sum, err)
		}
	}
	if n := len(framesOf(f, client.SystemID(), envelope.TypeSecureOpen)); n != 1 {
		t.Errorf("client sent %d SecureOpens, want 1 (channel reused)", n)
	}
	if n := len(framesOf(f, agent.SystemID(), envelope.TypeSecureAccept)); n != 1 {
		t.Errorf("agent sent %d SecureAccepts, want 1", n)
	}
	for _, n := range []*Node{agent, client} {
		data := framesOf(f, n.SystemID(), envelope.TypeData)
		if len(data) != 3 {
			t.Fatalf("%d Data envelopes from %s, want 3", len(data), n.SystemID())
		}
		for _, e := range data {
			enc := encOf(t, e)
			if enc == nil || enc.Alg != security.EncAlgChannel || !strings.HasPrefix(enc.Kid, "auto-math@fame.fabric-") {
				t.Errorf("Data from %s not channel-encrypted: sec=%s", n.SystemID(), e.Sec)
			}
			if strings.Contains(string(e.Frame), `"method"`) || strings.Contains(string(e.Frame), `"result"`) {
				t.Errorf("plaintext JSON-RPC visible on the wire: %s", e.Frame)
			}
		}
	}
}

func TestSecureAcceptCarriesAFTOnReplicas(t *testing.T) {
	f := overlaySentinel(t)
	acfg := testConfig(f, "*.fame.fabric")
	overlay("channel")(&acfg)
	agent := connect(t, acfg)
	if err := agent.Serve(context.Background(), "math@fame.fabric", testOps("replica", nil)); err != nil {
		t.Fatal(err)
	}
	ccfg := testConfig(f)
	overlay("channel")(&ccfg)
	client := connect(t, ccfg)
	if sum, err := add(t, client, 2, 2); err != nil || sum != 4 {
		t.Fatalf("add = %d, %v", sum, err)
	}
	attach := f.received(agent.SystemID())[0]
	fr, _ := attach.DecodeFrame()
	if st := string(fr.(*envelope.NodeAttach).Stickiness); st != string(stickinessOffer) {
		t.Errorf("replica NodeAttach stickiness = %s, want the aft offer", st)
	}
	accs := framesOf(f, agent.SystemID(), envelope.TypeSecureAccept)
	if len(accs) != 1 {
		t.Fatalf("%d SecureAccepts", len(accs))
	}
	var meta struct {
		Set struct {
			AFT string `json:"aft"`
		} `json:"set"`
	}
	if err := json.Unmarshal(accs[0].Meta, &meta); err != nil || meta.Set.AFT == "" {
		t.Fatalf("SecureAccept meta = %s, want set.aft", accs[0].Meta)
	}
	pub := agent.sec.signer.Key.Public().(ed25519.PublicKey)
	claims, err := aft.Verify(meta.Set.AFT, accs[0].SID, aft.LevelStrict, func(kid string) (ed25519.PublicKey, bool) {
		return pub, kid == agent.sec.signer.Kid
	}, time.Now())
	if err != nil {
		t.Fatalf("VerifyAFT: %v", err)
	}
	clientSID := envelope.SecureDigest(client.AssignedPath())
	if claims.ClientSID != clientSID || claims.Scope != aft.ScopeNode || !claims.Signed {
		t.Errorf("AFT claims %+v, want client_sid %s scope node", claims, clientSID)
	}

	// A client (not a replica) never mints AFTs, and an exact-bound agent neither.
	f2 := overlaySentinel(t)
	agent2, client2 := agentAndClient(t, f2, overlay("channel"))
	if _, err := add(t, client2, 1, 1); err != nil {
		t.Fatal(err)
	}
	for _, e := range framesOf(f2, agent2.SystemID(), envelope.TypeSecureAccept) {
		if len(e.Meta) != 0 {
			t.Errorf("exact-bound agent attached meta %s", e.Meta)
		}
	}
}

func TestSecureCloseReopensTransparently(t *testing.T) {
	f := overlaySentinel(t)
	agent, client := agentAndClient(t, f, overlay("channel"))
	if _, err := add(t, client, 1, 1); err != nil {
		t.Fatal(err)
	}
	// The agent loses its channel (restart, fail-over): the next request arrives on a cid it
	// does not know, it answers SecureClose, and the client re-opens and re-sends once.
	cid := encOf(t, framesOf(f, client.SystemID(), envelope.TypeData)[0]).Kid
	if !agent.sec.channels.table.Close(cid) {
		t.Fatalf("agent did not hold channel %s", cid)
	}
	if sum, err := add(t, client, 5, 6); err != nil || sum != 11 {
		t.Fatalf("call after the agent lost the channel: %d, %v", sum, err)
	}
	if n := len(framesOf(f, agent.SystemID(), envelope.TypeSecureClose)); n != 1 {
		t.Errorf("agent sent %d SecureCloses, want 1", n)
	}
	// The sentinel closes the new channel (replica left): the next call opens a third one.
	cid2 := encOf(t, framesOf(f, client.SystemID(), envelope.TypeData)[2]).Kid
	if cid2 == cid {
		t.Fatal("the re-sent call reused the closed channel")
	}
	f.sendTo(client.SystemID(), "__sys__@"+client.AssignedPath(), &envelope.SecureClose{CID: cid2, Reason: "replica left"})
	waitFor(t, "the client to drop the channel", func() bool { _, ok := client.sec.channels.table.Get(cid2); return !ok })
	if _, err := add(t, client, 2, 3); err != nil {
		t.Fatal(err)
	}
	if n := len(framesOf(f, client.SystemID(), envelope.TypeSecureOpen)); n != 3 {
		t.Errorf("client sent %d SecureOpens, want 3", n)
	}
}

// In a synctest bubble over in-memory pipes (see newBubbleSentinel): the answers are counted
// once the replayed copy has been handled.
func TestReplayedEnvelopeRefused(t *testing.T) { synctest.Test(t, testReplayedEnvelopeRefused) }

func testReplayedEnvelopeRefused(t *testing.T) {
	f := overlayBubbleSentinel(t)
	var agentID string
	replays := 0
	f.onForward = func(e *envelope.Envelope, to string) {
		if to == agentID && e.FrameType() == envelope.TypeData && replays == 0 {
			replays++
			cp := *e
			f.mu.Lock()
			c := f.children[to]
			f.mu.Unlock()
			f.write(context.Background(), c, &cp, -1) // the same envelope id twice
		}
	}
	agent, client := agentAndClient(t, f, overlay(""))
	agentID = agent.SystemID()
	if _, err := add(t, client, 1, 1); err != nil {
		t.Fatal(err)
	}
	synctest.Wait() // the replayed copy has been handled
	if n := len(framesOf(f, agentID, envelope.TypeData)); n != 1 {
		t.Errorf("agent answered %d times, want once (replay refused)", n)
	}
}
