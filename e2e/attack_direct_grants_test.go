package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/node"
)

// The compose stack's direct profile in one process: two OAuth2 clients, one for the replicas
// and one for the math client, and the sentinel's per-client grants.
const (
	directAudience       = "fame.fabric"
	directReplicasClient = "math-replicas"
	directReplicasSecret = "replicas-secret"
	directMathClient     = "math-client"
	directMathSecret     = "client-secret"
	directGrants         = "sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric;" +
		"sub=math-client system_ids=*"
)

// directStack is a sentinel with FAME_ADMISSION_PROFILE=direct and grants, and the dev OAuth2
// server that issues its tokens.
type directStack struct {
	*fabric
	oauthURL string
}

func newDirectStack(t *testing.T) *directStack {
	t.Helper()
	key, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	h := &lazyHandler{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	o, err := oauth2.New(oauth2.Config{Issuer: srv.URL, Audience: directAudience, Key: key,
		Clients: []oauth2.Client{{ID: directReplicasClient, Secret: directReplicasSecret}, {ID: directMathClient, Secret: directMathSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	h.set(o)
	return &directStack{fabric: newFabric(t, map[string]string{"FAME_ADMISSION_PROFILE": "direct",
		"FAME_JWT_TRUSTED_ISSUER": srv.URL, "FAME_JWKS_URL": srv.URL + oauth2.JWKSPath,
		"FAME_JWT_AUDIENCE": directAudience, "FAME_ADMISSION_GRANTS": directGrants}), oauthURL: srv.URL}
}

// as makes an SDK node fetch its access token as client id, as a compose node does.
func (d *directStack) as(id, secret string) func(*node.Config) {
	env := map[string]string{
		"FAME_ADMISSION_PROFILE":       "direct",
		"FAME_ADMISSION_TOKEN_URL":     d.oauthURL + oauth2.TokenPath,
		"FAME_ADMISSION_CLIENT_ID":     id,
		"FAME_ADMISSION_CLIENT_SECRET": secret,
		"FAME_JWT_AUDIENCE":            directAudience,
	}
	return func(c *node.Config) { c.AdmissionSettings = admitEnv(env) }
}

// bearer runs the client-credentials grant for id and returns the Authorization header a raw
// peer presents.
func (d *directStack) bearer(t *testing.T, id, secret string) http.Header {
	t.Helper()
	resp, err := http.PostForm(d.oauthURL+oauth2.TokenPath, url.Values{"grant_type": {"client_credentials"},
		"client_id": {id}, "client_secret": {secret}, "scope": {token.ScopeNodeConnect}, "audience": {directAudience}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || body.AccessToken == "" {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, b)
	}
	return http.Header{"Authorization": {"Bearer " + body.AccessToken}}
}

// TestAttackDirectGrants: under direct admission an access token names a client, not a node.
// Without grants the math client's token attached as a replica's system id (taking it over
// while the replica was down) and bound the math pool. With FAME_ADMISSION_GRANTS the token's
// subject is held to its grant: a replica id is SYSTEM_ID_NOT_GRANTED at attach, a replica
// logical is LOGICAL_NOT_GRANTED, and a bind of math@ from the client's own id is UNAUTHORIZED.
func TestAttackDirectGrants(t *testing.T) {
	d := newDirectStack(t)
	d.startReplica("math-replica1", "*.fame.fabric", nil, d.as(directReplicasClient, directReplicasSecret))
	r2 := d.startReplica("math-replica2", "*.fame.fabric", nil, d.as(directReplicasClient, directReplicasSecret))
	cfg := d.nodeConfig()
	cfg.SystemID = "client1"
	d.as(directMathClient, directMathSecret)(&cfg)
	client := d.connect(cfg)
	servesTen(t, client, "math-replica1", "math-replica2")

	// The replica is down: its id is free, so only the grant stands between the client's
	// credential and the replica's identity.
	_ = r2.Close()
	waitUntil(t, 5*time.Second, "math-replica2 gone", func() bool { return d.poolSize(t, "math@*.fame.fabric") == 1 })
	creds := d.bearer(t, directMathClient, directMathSecret)

	t.Run("attach as a replica", func(t *testing.T) {
		m := dialRaw(t, d.fabric, "math-replica2", creds)
		ack := m.attachAck(nil, "*.fame.fabric")
		if ack.OK || ack.Code != "SYSTEM_ID_NOT_GRANTED" {
			t.Fatalf("attach as math-replica2 with the client's token: %+v", ack)
		}
		m.expectClosed(websocket.StatusPolicyViolation, "SYSTEM_ID_NOT_GRANTED")
		if got := d.refusals(t, "system_id_not_granted"); got != 1 {
			t.Fatalf("system_id_not_granted counter %v", got)
		}
	})
	t.Run("declare the math domain", func(t *testing.T) {
		m := dialRaw(t, d.fabric, "evil1", creds)
		ack := m.attachAck(nil, "*.fame.fabric")
		if ack.OK || ack.Code != "LOGICAL_NOT_GRANTED" {
			t.Fatalf("attach declaring *.fame.fabric with the client's token: %+v", ack)
		}
		m.expectClosed(websocket.StatusPolicyViolation, "LOGICAL_NOT_GRANTED")
		if got := d.refusals(t, "logical_not_granted"); got != 1 {
			t.Fatalf("logical_not_granted counter %v", got)
		}
	})
	t.Run("bind math@fame.fabric", func(t *testing.T) {
		m := dialRaw(t, d.fabric, "evil2", creds)
		m.attach("*") // what a plain client declares: accepted, widens nothing
		for _, addr := range []string{"math@fame.fabric", "math@*.fame.fabric"} {
			b := m.bind(addr)
			if b.OK || b.Code != "UNAUTHORIZED" {
				t.Fatalf("bind %s with the client's token: %+v", addr, b)
			}
		}
		if got := d.refusals(t, "bind_unauthorized"); got != 2 {
			t.Fatalf("bind_unauthorized counter %v", got)
		}
	})
	t.Run("SDK client configured as a replica", func(t *testing.T) {
		// What `compose-test` does with FAME_NODE_ID=math-replica1: the SDK must fail Connect
		// with the sentinel's reason, not retry into an eviction loop.
		cfg := d.nodeConfig("*.fame.fabric")
		cfg.SystemID = "math-replica2"
		d.as(directMathClient, directMathSecret)(&cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := node.Connect(ctx, cfg)
		if err == nil {
			_ = n.Close()
			t.Fatal("the math client's credential connected as math-replica2")
		}
		if !strings.Contains(err.Error(), `may not attach as system id "math-replica2"`) {
			t.Fatalf("connect error %v does not give the sentinel's reason", err)
		}
		if got := d.refusals(t, "system_id_not_granted"); got != 2 {
			t.Fatalf("system_id_not_granted counter %v", got)
		}
	})
	if n := d.poolSize(t, "math@*.fame.fabric"); n != 1 {
		t.Fatalf("pool has %d members after the attacks, want 1", n)
	}
	for _, want := range []string{"reason=system_id_not_granted", "reason=logical_not_granted", "subject=math-client"} {
		if !strings.Contains(d.logs.String(), want) {
			t.Fatalf("sentinel log lacks %q", want)
		}
	}
	servesTen(t, client, "math-replica1")

	// The replica's own credential still gets its id back.
	d.startReplica("math-replica2", "*.fame.fabric", nil, d.as(directReplicasClient, directReplicasSecret))
	servesTen(t, client, "math-replica1", "math-replica2")
}
