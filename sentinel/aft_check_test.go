package sentinel

import (
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"

	"github.com/fame-go/fame/security/aft"
)

// TestAFTTwoPoolsNoFalseRefusal: session bindings are per client sid, so a client that calls
// the math pool and then the echo pool has its sid bound to an echo replica. The math replica
// that served it then tags a reply with an AFT for that session: a legitimate token, neither a
// refusal nor a nack.
func TestAFTTwoPoolsNoFalseRefusal(t *testing.T) {
	ts := startSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_STICKINESS_LEVEL": "strict"})
	reps := map[string]*signingPeer{}
	echo := map[string]*signingPeer{}
	for _, name := range []string{"r1", "r2", "e1", "e2"} {
		r := newSigningPeer(t, ts, name)
		r.attachSigned("*.fame.fabric")
		addr, set := "math@*.fame.fabric", reps
		if name[0] == 'e' {
			addr, set = "echo@*.fame.fabric", echo
		}
		if _, ack := r.bindSigned(addr); !ack.OK {
			t.Fatalf("bind: %+v", ack)
		}
		set[name] = r
	}
	client := newSigningPeer(t, ts, "client")
	client.attachSigned("*")
	clientSID := envelope.SecureDigest(client.path)
	first := servedBy(t, client, reps)
	client.sendSigned(client.request("echo@fame.fabric", `{}`), nil)
	got := false
	for _, r := range echo {
		if e, err := r.read(300 * time.Millisecond); err == nil && e.FrameType() == envelope.TypeData {
			got = true
		}
	}
	if !got {
		t.Fatal("no echo replica received the request")
	}
	r := reps[first]
	tok, err := aft.Sign(r.signer.Key, r.signer.Kid, envelope.SecureDigest(r.path), clientSID, "node", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sendAccept(t, r, client, "math-chan", tok)
	expectNothing(t, r.rawPeer, 300*time.Millisecond)
	if n := refusalCount(t, ts, refusalAFTForeignSession); n != 0 {
		t.Fatalf("refusals{aft_foreign_session} = %v for a legitimate replica", n)
	}
}

// TestRefusalLoggerThrottles: one warning per peer and reason per second; the next one says
// how many were held back.
func TestRefusalLoggerThrottles(t *testing.T) {
	var l refusalLogger
	a, b := &conn{}, &conn{}
	now := time.Unix(1000, 0)
	if _, ok := l.allow(a, "x", now); !ok {
		t.Fatal("first refusal not logged")
	}
	for i := 0; i < 5; i++ {
		if _, ok := l.allow(a, "x", now.Add(time.Duration(i)*100*time.Millisecond)); ok {
			t.Fatal("second refusal within a second logged")
		}
	}
	if _, ok := l.allow(b, "x", now); !ok {
		t.Fatal("another peer throttled")
	}
	if _, ok := l.allow(a, "y", now); !ok {
		t.Fatal("another reason throttled")
	}
	if n, ok := l.allow(a, "x", now.Add(time.Second)); !ok || n != 5 {
		t.Fatalf("after a second: logged %v, suppressed %d, want true, 5", ok, n)
	}
}
