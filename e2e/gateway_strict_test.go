package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// strictToken runs the client-credentials grant of the strict stack's OAuth2 server for one
// of its clients (its environment map: clientEnv, nodeEnv, repEnv).
func strictToken(t *testing.T, env map[string]string) string {
	t.Helper()
	return clientCredentialsToken(t, env["FAME_ADMISSION_TOKEN_URL"], env["FAME_ADMISSION_CLIENT_ID"],
		env["FAME_ADMISSION_CLIENT_SECRET"], strictAudience)
}

// gatewayPost posts body to the gateway path of base with a bearer token (none when empty).
func gatewayPost(t *testing.T, base, path, tok, body string) (int, map[string]any) {
	t.Helper()
	hdr := http.Header{}
	if tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	return postJSON(t, http.DefaultClient, base+"/fame/v1/gateway"+path, body, hdr)
}

// signer is the key id an envelope's signature names ("" when unsigned).
func signer(e *envelope.Envelope) string {
	var sec struct {
		Sig struct {
			Kid string `json:"kid"`
		} `json:"sig"`
	}
	_ = json.Unmarshal(e.Sec, &sec)
	return sec.Sig.Kid
}

// TestGatewayStrictOverlay is the HTTP gateway of a real `fame sentinel` process in the
// reference example's strict stack (strict-overlay, channel encryption, welcome admission,
// the CA): each HTTP caller is admitted by the welcome service with its own bearer and signs
// with a key of its own certified by the CA, so two callers reach the replica as two
// identities (two sids, two signing keys), never as the sentinel. A token the welcome
// service refuses is answered 401 (counted), and the legitimate callers are served after.
func TestGatewayStrictOverlay(t *testing.T) {
	st := newStack(t, stackOptions{procEnv: map[string]string{"FAME_GATEWAY": "on", "FAME_ADMIN_TOKEN": "gw-admin-token-0123456789"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The replica records who sent each envelope to the math address (sid and signing key):
	// under channel encryption the frames are sealed, so it counts senders, not methods.
	type seen struct{ sid, kid string }
	var mu sync.Mutex
	var adds []seen
	cfg := st.clientConfig([]string{"*.fame.fabric"}, nil)
	cfg.AdmissionSettings = admitEnv(st.repEnv)
	cfg.SystemID = "math-gw1"
	cfg.Inbound = []node.EnvelopeHook{func(e *envelope.Envelope) error {
		if strings.HasPrefix(fmt.Sprint(e.To), "math@") {
			mu.Lock()
			adds = append(adds, seen{e.SID, signer(e)})
			mu.Unlock()
		}
		return nil
	}}
	rep, err := node.Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("replica: %v", err)
	}
	t.Cleanup(func() { rep.Close() })
	if err := rep.Serve(ctx, mathagent.Address, mathagent.Ops("gw1")); err != nil {
		t.Fatal(err)
	}

	const add = `{"targetAddr":"` + mathagent.Address + `","method":"add","params":{"x":3,"y":4}}`
	clientTok, nodeTok := strictToken(t, st.clientEnv), strictToken(t, st.nodeEnv)
	hellos, signs := st.hellos.Load(), st.signs.Load()
	for i, tok := range []string{clientTok, nodeTok} {
		code, out := gatewayPost(t, st.url, "/rpc", tok, add)
		if code != 200 || out["ok"] != true || out["result"] != float64(7) {
			t.Fatalf("caller %d: rpc under strict-overlay: %d %v\n%s", i, code, out, st.proc.out.String())
		}
	}
	if h, s := st.hellos.Load()-hellos, st.signs.Load()-signs; h != 2 || s != 2 {
		t.Fatalf("the two callers made %d welcome hellos and %d CA signings, want 2 and 2", h, s)
	}
	mu.Lock()
	sids, kids := map[string]bool{}, map[string]bool{}
	for _, a := range adds {
		sids[a.sid], kids[a.kid] = true, true
	}
	mu.Unlock()
	if len(sids) != 2 || len(kids) != 2 || sids[""] || kids[""] {
		t.Fatalf("two gateway callers reached the replica as sids %v signed by %v, want two of each", sids, kids)
	}

	// The attacker: a forged token and a token the welcome service does not know.
	before := st.proc.fabric.metric(t, "fame_gateway_refusals_total", `reason="unauthorized"`)
	for _, bad := range []string{"not-a-jwt", clientTok[:len(clientTok)-4] + "AAAA"} {
		code, out := gatewayPost(t, st.url, "/rpc", bad, add)
		if code != 401 || out["code"] != "unauthorized" {
			t.Fatalf("forged token %q…: %d %v", bad[:8], code, out)
		}
	}
	if code, out := gatewayPost(t, st.url, "/rpc", "", add); code != 401 || out["code"] != "unauthorized" {
		t.Fatalf("no token: %d %v", code, out)
	}
	if after := st.proc.fabric.metric(t, "fame_gateway_refusals_total", `reason="unauthorized"`); after < before+3 {
		t.Fatalf("fame_gateway_refusals_total{reason=unauthorized} %v -> %v, want +3", before, after)
	}
	hellos = st.hellos.Load()
	for i := range 10 {
		if code, out := gatewayPost(t, st.url, "/rpc", clientTok, add); code != 200 || out["result"] != float64(7) {
			t.Fatalf("legitimate call %d after the attack: %d %v", i, code, out)
		}
	}
	if h := st.hellos.Load() - hellos; h != 0 {
		t.Fatalf("%d welcome hellos for a caller already admitted, want 0 (its node is kept)", h)
	}
}
