package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node/admit"
	"github.com/fame-go/fame/security"
)

// TestAttackStrictOverlayBindShadow: in strict-overlay with welcome admission, a node that was
// legitimately admitted (valid ticket, valid SVID) for the logical fame.fabric serves
// math@fame.fabric exactly while the math@*.fame.fabric pool is live: the exact route would
// win, and it would answer the clients' SecureOpen with a valid certificate. Refused with
// BIND_CONFLICT; the pool keeps serving a real client over encrypted channels.
func TestAttackStrictOverlayBindShadow(t *testing.T) {
	st := newStrictStack(t)
	st.replica(t, "r1")
	st.replica(t, "r2")
	client, err := st.connect(t, st.nodeConfig("client1"))
	if err != nil {
		t.Fatal(err)
	}
	servesTen(t, client, "r1", "r2")

	m, err := st.connect(t, st.nodeConfig("mallory", "fame.fabric"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = m.Serve(ctx, mathagent.Address, mathagent.Ops("mallory"))
	if err == nil || !strings.Contains(err.Error(), "BIND_CONFLICT") {
		t.Fatalf("shadowing serve: %v", err)
	}
	if got := st.metric(t, "fame_security_refusals_total", `reason="bind_conflict"`); got != 1 {
		t.Fatalf("bind_conflict counter %v", got)
	}
	servesTen(t, client, "r1", "r2")
}

// TestAttackStrictOverlaySystemIDTakeover: a holder of the shared replica credential (one
// OAuth2 client for every node) obtains, through the real welcome service and CA, a ticket and
// a certificate for a live replica's system id, hence for its SPIFFE ID, and attaches as r1 from
// a raw peer with a NodeAttach SIGNED by that certified key. A certificate for the same SPIFFE
// ID is no proof of ownership (only the key registered for the path is), and r1 answers the
// liveness probe: refused with SYSTEM_ID_IN_USE and the attach socket closed; r1 keeps its
// path and pool slot.
func TestAttackStrictOverlaySystemIDTakeover(t *testing.T) {
	st := newStrictStack(t)
	st.replica(t, "r1")
	st.replica(t, "r2")
	client, err := st.connect(t, st.nodeConfig("client1"))
	if err != nil {
		t.Fatal(err)
	}
	servesTen(t, client, "r1", "r2")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	env := st.nodeEnv
	adm, err := config.Admit(config.MapEnv(env), admit.Options{SystemID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := adm.CertSource(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := cs.Certificate(ctx)
	if err != nil {
		t.Fatalf("certificate for r1 from the shared credential: %v", err)
	}
	victimPath := "/" + strictSentinelID + "/r1"
	if cert.SID != envelope.SecureDigest(victimPath) {
		t.Fatalf("certificate is for sid %s, not r1's", cert.SID)
	}
	tok, err := adm.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &fabric{t: t, addr: strings.TrimPrefix(st.url, "http://"), env: map[string]string{}}
	before := f.refusals(t, "system_id_in_use")

	m := &hostile{rawPeer: dialRaw(t, f, "r1", http.Header{"Authorization": {"Bearer " + tok}}),
		signer: &security.Signer{Key: key, Kid: envelope.NewID()}}
	sj := security.SigningJWK(key.Public().(ed25519.PublicKey), m.signer.Kid)
	for _, c := range cert.Chain {
		sj.X5C = append(sj.X5C, base64.StdEncoding.EncodeToString(c.Raw))
	}
	kb, err := json.Marshal(sj)
	if err != nil {
		t.Fatal(err)
	}
	e := m.newEnv(&envelope.NodeAttach{OriginType: "downstream", SystemID: "r1", InstanceID: adm.InstanceID,
		AcceptedLogicals: []string{"*.fame.fabric"}, Keys: []json.RawMessage{kb}})
	e.SID = envelope.SecureDigest(victimPath) // signed as r1's path, as a restarted r1 would
	m.sendAs(e)
	ack, ok := mustFrame(t, m.recv()).(*envelope.NodeAttachAck)
	if !ok {
		t.Fatal("want NodeAttachAck")
	}
	if ack.OK || ack.Code != "SYSTEM_ID_IN_USE" {
		t.Fatalf("take-over attach signed by a certified key for r1: %+v", ack)
	}
	if strings.Contains(ack.Reason, "127.0.0.1") {
		t.Fatalf("refusal reason leaks the holder's address: %q", ack.Reason)
	}
	m.expectClosed(websocket.StatusPolicyViolation, "SYSTEM_ID_IN_USE")
	if got := f.refusals(t, "system_id_in_use"); got != before+1 {
		t.Fatalf("system_id_in_use counter %v, want %v", got, before+1)
	}
	// The client's channel is sticky to one replica; the pool still holds r1 on its original
	// connection (stats name members by system id) and the client keeps being served.
	pools, _ := f.stats(t)["routes"].(map[string]any)["pools"].(map[string]any)
	if members, _ := pools["math@*.fame.fabric"].([]any); len(members) != 2 {
		t.Fatalf("pool after the attack: %v", members)
	}
	servesTen(t, client, "r1", "r2")
}
