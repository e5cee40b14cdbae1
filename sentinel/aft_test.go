package sentinel

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"

	"github.com/fame-go/fame/security/aft"
)

// sendAccept makes replica r send a signed SecureAccept to the client carrying token as
// meta.set.aft, as a reference replica does after a channel handshake.
func sendAccept(t *testing.T, r *signingPeer, client *signingPeer, cid, token string) {
	t.Helper()
	e := r.newEnv(&envelope.SecureAccept{Ack: envelope.Ack{OK: true}, CID: cid, EphPub: "AAAA", Alg: "CHACHA20P1305"})
	e.To = "__sys__@" + client.path
	meta, _ := json.Marshal(map[string]any{"set": map[string]string{"aft": token}})
	e.Meta = meta
	r.sendSigned(e, nil)
	if got := client.recv(); got.FrameType() != envelope.TypeSecureAccept {
		t.Fatalf("client got %s", got.Frame)
	}
}

// expectSysNack reads r's next envelope and fails unless it is the sentinel's negative
// DeliveryAck with code, sent to r's __sys__ inbox.
func expectSysNack(t *testing.T, r *signingPeer, code string) {
	t.Helper()
	e := r.recv()
	fr, err := e.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	ack, ok := fr.(*envelope.DeliveryAck)
	if !ok || ack.OK || ack.Code != code || e.To != "__sys__@"+r.path {
		t.Fatalf("%s got %s to %s, want a DeliveryAck nack %s to its __sys__ inbox", r.path, e.Frame, e.To, code)
	}
}

// servedBy sends a request from the client and returns which replica received it.
func servedBy(t *testing.T, client *signingPeer, reps map[string]*signingPeer) string {
	t.Helper()
	client.sendSigned(client.request("math@fame.fabric", `{}`), nil)
	for name, r := range reps {
		if e, err := r.read(300 * time.Millisecond); err == nil && e.FrameType() == envelope.TypeData {
			return name
		}
	}
	t.Fatal("no replica received the request")
	return ""
}

// TestAFTPinsAndRefusals: in strict mode a valid AFT from a replica re-pins the client's
// session to it; forged, expired, wrong-sid and alg:none tokens are refused with a reason and
// change nothing.
func TestAFTPinsAndRefusals(t *testing.T) {
	ts := startSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_STICKINESS_LEVEL": "strict"})
	reps := map[string]*signingPeer{}
	for _, name := range []string{"r1", "r2"} {
		r := newSigningPeer(t, ts, name)
		r.attachSigned("*.fame.fabric")
		if _, ack := r.bindSigned("math@*.fame.fabric"); !ack.OK {
			t.Fatalf("bind: %+v", ack)
		}
		reps[name] = r
	}
	client := newSigningPeer(t, ts, "client")
	client.attachSigned("*")
	clientSID := envelope.SecureDigest(client.path)

	first := servedBy(t, client, reps)
	other := "r1"
	if first == "r1" {
		other = "r2"
	}
	for i := 0; i < 3; i++ {
		if got := servedBy(t, client, reps); got != first {
			t.Fatalf("session not sticky: %s then %s", first, got)
		}
	}
	f, o := reps[first], reps[other]
	now := time.Now()
	sign := func(signer *security.Signer, replicaSID string, ttl time.Duration, at time.Time) string {
		tok, err := aft.Sign(signer.Key, signer.Kid, replicaSID, clientSID, "node", ttl, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	fSID, oSID := envelope.SecureDigest(f.path), envelope.SecureDigest(o.path)
	forger := newSigner(t)
	forger.Kid = f.signer.Kid // right kid, wrong key
	unsigned, _ := aft.Unsigned(f.signer.Kid, fSID, clientSID, time.Minute, now)
	refusals := []struct {
		name, token string
		reason      aft.Reason
	}{
		{"forged", sign(forger, fSID, time.Minute, now), aft.ReasonBadSignature},
		{"expired", sign(f.signer, fSID, time.Minute, now.Add(-time.Hour)), aft.ReasonExpired},
		{"wrong sid", sign(f.signer, oSID, time.Minute, now), aft.ReasonWrongSID},
		{"alg none", unsigned, aft.ReasonAlgNone},
	}
	for _, r := range refusals {
		sendAccept(t, f, client, "chan-bad-"+r.name, r.token)
		expectSysNack(t, f, codeAFTInvalid)
		waitFor(t, func() bool { return ts.sticky.stats().AFTRefused[r.reason] >= 1 })
		if got := servedBy(t, client, reps); got != first {
			t.Fatalf("%s AFT moved the session to %s", r.name, got)
		}
	}
	if !strings.Contains(ts.logs.String(), "AFT refused") {
		t.Fatal("no log line for refused AFTs")
	}
	// A valid token from the replica the session was routed to confirms the pin.
	sendAccept(t, f, client, "chan-good", sign(f.signer, fSID, time.Minute, now))
	waitFor(t, func() bool { return ts.sticky.stats().AFTVerified >= 1 })
	// The other replica cannot pull the session with a token of its own (valid, but for a
	// session that was not routed to it), nor can the session's replica carry a token signed
	// by the other replica's key, nor can either claim a sid that is not its own.
	ownership := []struct {
		name, token, reason, code string
		from                      *signingPeer
		sid                       string
	}{
		{"foreign session", sign(o.signer, oSID, time.Minute, now), refusalAFTForeignSession, codeAFTForeignSession, o, ""},
		{"foreign kid", sign(o.signer, fSID, time.Minute, now), refusalAFTForeignKid, codeAFTForeignKid, f, ""},
	}
	for _, r := range ownership {
		before := refusalCount(t, ts, r.reason)
		sendAccept(t, r.from, client, "chan-"+r.name, r.token)
		expectSysNack(t, r.from, r.code)
		waitFor(t, func() bool { return refusalCount(t, ts, r.reason) == before+1 })
		for i := 0; i < 3; i++ {
			if got := servedBy(t, client, reps); got != first {
				t.Fatalf("%s AFT moved the session to %s", r.name, got)
			}
		}
	}
	st := ts.sticky.stats()
	t.Logf("AFT verified %d, refused %v", st.AFTVerified, st.AFTRefused)
	resp, err := http.Get("http" + strings.TrimPrefix(ts.url, "ws") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`fame_aft_refused_total{reason="bad_signature"} 1`, `fame_aft_verified_total 1`, `fame_security_refusals_total{reason="aft_foreign_kid"} 1`, `fame_security_refusals_total{reason="aft_foreign_session"} 1`, `fame_stickiness_lookups_total{kind="session",result="hit"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
