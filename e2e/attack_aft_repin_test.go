package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"

	"github.com/fame-go/fame/security/aft"
)

// TestAttackAFTRepin: a pool member tries to pull a client's sticky session to itself with an
// affinity token (meta.set.aft) it carries on any envelope: a token of its own for a session
// that was routed elsewhere (foreign session), a token naming another node's kid (foreign
// kid), where envelopes are not signed an envelope and token claiming the victim replica's
// sid (foreign sid), or a token that writes client_sid twice ({"client_sid":"<victim>",
// "client_sid":null}: one parser reads the victim, another nothing). Each is refused, nacked
// with its code to the attacker's __sys__ inbox and counted; the session stays where it was.
func TestAttackAFTRepin(t *testing.T) {
	strict := profileOverlay
	strict.env = map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_STICKINESS_LEVEL": "strict"}
	cases := []struct {
		ap     attackProfile
		attack string // foreign_session, foreign_kid, foreign_sid, dup_client_sid
	}{
		{profileOpen, "foreign_session"},
		{profileOpen, "foreign_sid"},
		{profileOpen, "dup_client_sid"},
		{strict, "foreign_session"},
		{strict, "foreign_kid"},
	}
	wire := map[string][2]string{ // attack -> refusal reason, nack code
		"foreign_session": {"aft_foreign_session", "AFT_FOREIGN_SESSION"},
		"foreign_sid":     {"aft_foreign_sid", "AFT_FOREIGN_SID"},
		"foreign_kid":     {"aft_foreign_kid", "AFT_FOREIGN_KID"},
		"dup_client_sid":  {"aft_invalid", "AFT_INVALID"},
	}
	for _, tc := range cases {
		t.Run(tc.ap.name+"/"+tc.attack, func(t *testing.T) {
			f := newFabric(t, tc.ap.env)
			f.startReplica("r1", "*.fame.fabric", nil, tc.ap.mod(nil))
			f.startReplica("r2", "*.fame.fabric", nil, tc.ap.mod(nil))
			client := f.sdkClient(tc.ap, "client1")
			pinned := whoami(t, client)
			servesTen(t, client, pinned)

			m := newHostile(t, f, tc.ap, "mallory")
			ack := m.attachAs("*.fame.fabric")
			if !ack.OK {
				t.Fatalf("attach: %+v", ack)
			}
			if b := m.bindAs("math@*.fame.fabric"); !b.OK {
				t.Fatalf("pool bind: %+v", b)
			}
			sentinelPath := path.Dir(m.path)
			clientSID := envelope.SecureDigest(sentinelPath + "/client1")
			ownSID := envelope.SecureDigest(m.path)
			victimSID := envelope.SecureDigest(sentinelPath + "/" + pinned)
			envSID, tokSID := ownSID, ownSID
			var tok string
			var err error
			switch {
			case tc.attack == "dup_client_sid":
				enc := base64.RawURLEncoding
				tok = enc.EncodeToString([]byte(`{"alg":"none","kid":""}`)) + "." + enc.EncodeToString([]byte(fmt.Sprintf(
					`{"sid":%q,"exp":%d,"scp":"node","client_sid":%q,"client_sid":null}`, ownSID, time.Now().Add(time.Hour).Unix(), clientSID))) + "."
			case m.signer == nil && tc.attack == "foreign_sid":
				envSID, tokSID = victimSID, victimSID
				tok, err = aft.Unsigned("", tokSID, clientSID, time.Hour, time.Now())
			case m.signer == nil:
				tok, err = aft.Unsigned("", tokSID, clientSID, time.Hour, time.Now())
			case tc.attack == "foreign_kid":
				kid := sentinelKid(t, ack.Keys) // a kid the attacker has seen: the sentinel's
				tok, err = aft.Sign(m.signer.Key, kid, tokSID, clientSID, aft.ScopeNode, time.Hour, time.Now())
			default:
				tok, err = aft.Sign(m.signer.Key, m.signer.Kid, tokSID, clientSID, aft.ScopeNode, time.Hour, time.Now())
			}
			if err != nil {
				t.Fatal(err)
			}
			e := m.newEnv(&envelope.Data{Payload: json.RawMessage(`{}`)})
			e.To, e.SID = "__sys__@"+m.path, envSID
			e.Meta, _ = json.Marshal(map[string]any{"set": map[string]string{"aft": tok}})
			m.sendAs(e)
			m.expectSysNack(wire[tc.attack][1], e.ID)
			if got := f.refusals(t, wire[tc.attack][0]); got != 1 {
				t.Fatalf("refusals{%s} %v, want 1", wire[tc.attack][0], got)
			}
			servesTen(t, client, pinned)
		})
	}
}

func sentinelKid(t *testing.T, keys []json.RawMessage) string {
	t.Helper()
	for _, raw := range keys {
		if j, err := security.ParseJWK(raw); err == nil && j.Use == "sig" {
			return j.Kid
		}
	}
	t.Fatal("NodeAttachAck carries no sentinel signing key")
	return ""
}
