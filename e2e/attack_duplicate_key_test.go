package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/security"
)

// TestAttackDuplicateKey: an attacker sends a request carrying "to" twice, once escaped as
// "t\u006f", in both key orders. The routing header scan and the decoder that signatures are
// checked against once read different copies (one order was routed to the math pool while the
// verifier saw another address, the other order was nacked NO_ROUTE). Now every parser refuses
// the envelope: the sentinel closes the connection with 1007 "malformed envelope: … duplicate
// key", logs it with the peer and counts it in fame_malformed_total, and a real client still
// gets its answers from the math replicas.
func TestAttackDuplicateKey(t *testing.T) {
	for _, profile := range []string{"open", "overlay"} {
		t.Run(profile, func(t *testing.T) {
			f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": profile})
			withProfile := func(c *node.Config) { c.SecurityProfile = profile }
			f.startReplica("replica1", "*.fame.fabric", nil, withProfile)
			f.startReplica("replica2", "*.fame.fabric", nil, withProfile)
			ccfg := f.nodeConfig()
			ccfg.SecurityProfile = profile
			client := f.connect(ccfg)

			for i, order := range []string{"plain first", "escaped first"} {
				before := f.metric(t, "fame_malformed_total")
				atk := dialRaw(t, f, "mallory"+string(rune('a'+i)), nil)
				signer := &security.Signer{Kid: envelope.NewID()}
				_, signer.Key, _ = ed25519.GenerateKey(rand.Reader)
				atk.attachAck(func(na *envelope.NodeAttach) {
					if profile == "overlay" {
						k, err := json.Marshal(security.SigningJWK(signer.Key.Public().(ed25519.PublicKey), signer.Kid))
						if err != nil {
							t.Fatal(err)
						}
						na.Keys = []json.RawMessage{k}
					}
				})
				if atk.path == "" {
					t.Fatalf("attacker not attached")
				}
				e, err := envelope.New(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"add","params":{"x":3,"y":4}}`)})
				if err != nil {
					t.Fatal(err)
				}
				e.To, e.ReplyTo, e.RType = mathagent.Address, "__rpc__x@"+atk.path, envelope.RTypeReply
				e.CorrID, e.FlowID, e.SID = envelope.NewID(), envelope.NewID(), envelope.SecureDigest(atk.path)
				if profile == "overlay" {
					if err := signer.Sign(e); err != nil {
						t.Fatal(err)
					}
				}
				b, err := e.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				// Hand-built bytes: a second "to", escaped, next to the one that was signed.
				plain := `"to":"math@fame.fabric"`
				other := `"t\u006f":"nowhere@fame.fabric"`
				var twice string
				if order == "plain first" {
					twice = plain + "," + other
				} else {
					twice = other + "," + plain
				}
				msg := strings.Replace(string(b), plain, twice, 1)
				if msg == string(b) {
					t.Fatalf("no to member in %s", b)
				}
				if err := atk.sendRaw([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				atk.expectClosed(websocket.StatusInvalidFramePayloadData, "duplicate key")
				if got := f.metric(t, "fame_malformed_total"); got != before+1 {
					t.Fatalf("%s: fame_malformed_total %v -> %v, want +1", order, before, got)
				}
			}
			if logs := f.logs.String(); !strings.Contains(logs, "malformed envelope, closing") ||
				!strings.Contains(logs, "peer=mallorya") || !strings.Contains(logs, "duplicate key") {
				t.Fatalf("no log line naming the attacker and the duplicate key:\n%s", logs)
			}

			// The victims still serve a real client.
			for i := 0; i < 10; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var sum float64
				err := client.Call(ctx, mathagent.Address, "add", map[string]any{"x": i, "y": 1}, &sum)
				cancel()
				if err != nil || sum != float64(i+1) {
					t.Fatalf("call %d after the attack: %v, %v", i, sum, err)
				}
			}
		})
	}
}
