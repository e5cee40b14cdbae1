package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// strictCluster is the default compose stack's security (strict-overlay, channel encryption,
// welcome admission, SPIFFE certificates from the CA, stickiness level strict) over a cluster
// of `fame sentinel` processes: one OAuth2 server and one CA, and one welcome service per
// sentinel (same key and issuer, each placing its nodes on its own sentinel), as an operator
// would run placement until welcome spreads nodes itself.
type strictCluster struct {
	*clusterFixture
	credential func(sentinel int, id, secret string) map[string]string
}

// strictStackClusterYAML is the compose stack's sentinel profile (its Template variables, which
// a file of one's own sets as YAML).
const strictStackClusterYAML = `  security: {type: SecurityProfile, profile: strict-overlay}
  admission: {type: AdmissionProfile, profile: welcome}
  stickiness: {type: AFTLoadBalancerStickinessManager, security_level: strict}
`

func newStrictCluster(t *testing.T, n int) *strictCluster {
	t.Helper()
	return newStrictClusterGrace(t, n, "2s")
}

// newStrictClusterGrace is newStrictCluster with the cluster's grace window.
func newStrictClusterGrace(t *testing.T, n int, grace string) *strictCluster {
	t.Helper()
	auth, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	root := string(auth.RootPEM())
	oh, ch := &lazyHandler{}, &lazyHandler{}
	oSrv, cSrv := httptest.NewServer(oh), httptest.NewServer(ch)
	t.Cleanup(func() { oSrv.Close(); cSrv.Close() })
	oKey, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	osrv, err := oauth2.New(oauth2.Config{Issuer: oSrv.URL, Audience: strictAudience,
		Clients: []oauth2.Client{{ID: strictClient, Secret: strictSecret}, {ID: strictReplicas, Secret: strictRepSecret}},
		Key:     oKey})
	if err != nil {
		t.Fatal(err)
	}
	oh.set(osrv)
	wKey, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{oKey.Kid: oKey.Public()}, Issuer: oSrv.URL,
		Audience: strictAudience, RequiredScopes: []string{"node.connect"}, Leeway: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	grants, err := token.NewVerifier(token.Config{Keys: token.StaticKeys{wKey.Kid: wKey.Public()}, Issuer: strictIssuer,
		Audience: ticket.AudienceCA, Leeway: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	csrv, err := ca.NewServer(auth, grants, false, discard())
	if err != nil {
		t.Fatal(err)
	}
	ch.set(csrv)
	newWelcome := func(target, attachURL string) *welcome.Service {
		w, err := welcome.New(welcome.Config{TargetSystemID: target, AttachURL: attachURL,
			CAServiceURL: cSrv.URL + "/fame/v1/ca", Issuer: strictIssuer, Verifier: bearer, Key: wKey, Logger: discard(),
			Grants: []welcome.ClientGrant{
				{Subject: strictReplicas, SystemIDs: []string{"math-*"}, Logicals: []string{"*.fame.fabric", "fame.fabric"}},
				{Subject: strictClient, SystemIDs: []string{"*"}},
			}})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// The sentinels read the welcome JWKS (one key for every welcome service) from here.
	jwks := httptest.NewServer(newWelcome("s0", "ws://127.0.0.1:1/unused"))
	t.Cleanup(jwks.Close)
	whs := make([]*lazyHandler, n)
	wSrvs := make([]*httptest.Server, n)
	for i := range whs {
		whs[i] = &lazyHandler{}
		wSrvs[i] = httptest.NewServer(whs[i])
		t.Cleanup(wSrvs[i].Close)
	}
	cf := startClusterSpec(t, clusterSpec{n: n, grace: grace, node: strictStackClusterYAML, env: func(i int) map[string]string {
		return map[string]string{
			"FAME_DEFAULT_ENCRYPTION_LEVEL": "channel",
			"FAME_JWT_AUDIENCE":             strictAudience, "FAME_JWT_TRUSTED_ISSUER": strictIssuer,
			"FAME_JWKS_URL": jwks.URL + welcome.JWKSPath, "FAME_CA_CERTS": root,
			"FAME_ADMISSION_SERVICE_URL": wSrvs[i].URL + welcome.HelloPath,
		}
	}})
	for i := range whs {
		whs[i].set(newWelcome(cf.ids[i], cf.url(i)))
	}
	return &strictCluster{clusterFixture: cf, credential: func(s int, id, secret string) map[string]string {
		return map[string]string{
			"FAME_ADMISSION_PROFILE":       "welcome",
			"FAME_ADMISSION_SERVICE_URL":   wSrvs[s].URL + welcome.HelloPath,
			"FAME_ADMISSION_TOKEN_URL":     oSrv.URL + oauth2.TokenPath,
			"FAME_ADMISSION_CLIENT_ID":     id,
			"FAME_ADMISSION_CLIENT_SECRET": secret,
			"FAME_JWT_AUDIENCE":            strictAudience,
			"FAME_CA_CERTS":                root,
		}
	}}
}

// node connects a strict-overlay node (system id id, OAuth2 client client) admitted by
// sentinel s's welcome service.
func (sc *strictCluster) node(t *testing.T, s int, id, client, secret string, logicals ...string) *node.Node {
	t.Helper()
	cfg := node.Config{SystemID: id, SecurityProfile: "strict-overlay", EncryptionLevel: "channel",
		RequestedLogicals: logicals, AdmissionSettings: admitEnv(sc.credential(s, client, secret)), Logger: discard(),
		CallTimeout: 15 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := node.Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("%s via %s's welcome: %v", id, sc.ids[s], err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if got := n.AssignedPath(); got != "/"+sc.ids[s]+"/"+id {
		t.Fatalf("%s attached at %s, want under %s", id, got, sc.ids[s])
	}
	return n
}

// TestClusterSignStrictStack: the default compose stack's security over three clustered
// sentinels, every node admitted by welcome with a certificate from the CA: the math replicas
// math-r1 on s1 and math-r2 on s2, clients on s0. Every call is answered through an encrypted
// channel, each client session by one replica, and no node refused anything.
func TestClusterSignStrictStack(t *testing.T) {
	sc := newStrictCluster(t, 3)
	for i, name := range []string{"", "r1", "r2"} {
		if name == "" {
			continue
		}
		r := sc.node(t, i, "math-"+name, strictReplicas, strictRepSecret, "*.fame.fabric")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := r.Serve(ctx, mathagent.Address, mathagent.Ops(name)); err != nil {
			t.Fatalf("serve %s: %v", name, err)
		}
		cancel()
	}
	sc.waitReplicas(2)
	seen := map[string]int{}
	for k := 0; k < 4; k++ {
		c := sc.node(t, 0, fmt.Sprintf("client-%d", k), strictClient, strictSecret)
		var mu sync.Mutex
		answers := map[string]int{}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				var who string
				if err := c.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who); err != nil {
					t.Errorf("client %d: whoami: %v", k, err)
					return
				}
				mu.Lock()
				answers[who]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(answers) != 1 {
			t.Errorf("client %d: answered by %v, want one replica for the session", k, answers)
		}
		for who := range answers {
			seen[who]++
		}
		if c.SecureChannels() == 0 {
			t.Errorf("client %d: no secure channel", k)
		}
		if r := c.Refusals(); len(r) != 0 {
			t.Errorf("client %d refused: %v", k, r)
		}
	}
	t.Logf("sessions per replica: %v", seen)
	for i := range sc.procs {
		if n := sc.clusterKeys(i, "invalid"); n != 0 {
			t.Errorf("%s refused %v keys from peers", sc.ids[i], n)
		}
	}
	if n := sc.clusterKeys(0, "served_peer_key"); n < 1 {
		t.Errorf("s0 served %v peer keys, want the replicas'", n)
	}
}
