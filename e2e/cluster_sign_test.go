package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

const overlayClusterYAML = "  security: {type: SecurityProfile, profile: overlay}\n  admission: {type: AdmissionProfile, profile: none}\n"

func overlayNode(c *node.Config) { c.SecurityProfile = "overlay" }

// TestClusterSignOverlay: three `fame sentinel` processes clustered under overlay, replica r1
// on s1, clients on s0. Every call is answered, which under overlay means the replica verified
// each request with the client's key and the client each reply with the replica's: neither
// key is in the store of the node's own sentinel by attach, so s1 served the client's key and
// s0 the replica's from the cluster's key directory (served_peer_key). Fresh clients that
// call right after attaching exercise the KeyRequest wait for a key still crossing the KV.
// No node refused anything.
func TestClusterSignOverlay(t *testing.T) {
	cf := startClusterSpec(t, clusterSpec{n: 3, grace: "2s", node: overlayClusterYAML})
	r1 := cf.procs[1].startReplica("r1", "*.fame.fabric", nil, overlayNode)
	cf.waitReplicas(1)

	var clients []*node.Node
	for k := 0; k < 4; k++ {
		cfg := cf.clientConfig(0, false)
		overlayNode(&cfg)
		clients = append(clients, cf.procs[0].connect(cfg))
	}
	var wg sync.WaitGroup
	for k, c := range clients {
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
				if who != "r1" {
					t.Errorf("client %d: answered by %q, want r1", k, who)
				}
			}()
		}
	}
	wg.Wait()
	var sum int
	if err := clients[0].Call(context.Background(), mathagent.Address, "add", map[string]any{"x": 3, "y": 4}, &sum); err != nil || sum != 7 {
		t.Fatalf("add(3, 4) = %d, %v", sum, err)
	}
	if n := cf.clusterKeys(1, "served_peer_key"); n < 1 {
		t.Errorf("s1 served %v keys vouched for by a peer, want the clients' keys (the replica asked for them)", n)
	}
	if n := cf.clusterKeys(0, "served_peer_key"); n < 1 {
		t.Errorf("s0 served %v keys vouched for by a peer, want the replica's key (its clients asked for it)", n)
	}
	if n := cf.procs[0].metric(t, "fame_cluster_routed_total", `where="remote"`); n < 33 {
		t.Errorf("s0 routed %v calls to a remote replica, want all 33", n)
	}
	for i, n := range append(clients, r1) {
		if r := n.Refusals(); len(r) != 0 {
			t.Errorf("node %d refused: %v", i, r)
		}
	}
	t.Logf("s0 keys learned %v, served %v, waited %v; s1 learned %v, served %v, waited %v",
		cf.clusterKeys(0, "learned"), cf.clusterKeys(0, "served_peer_key"), cf.clusterKeys(0, "waited"),
		cf.clusterKeys(1, "learned"), cf.clusterKeys(1, "served_peer_key"), cf.clusterKeys(1, "waited"))

	// A client that leaves takes its keys out of every sentinel's store.
	learned := cf.clusterKeys(2, "learned")
	if learned < 1 {
		t.Errorf("s2 learned %v keys, want the others' (it holds no node)", learned)
	}
	_ = clients[0].Close()
	waitUntil(t, 10*time.Second, "s2 forgetting the closed client's keys", func() bool {
		return cf.clusterKeys(2, "forgotten") >= 1
	})
}

const strictClusterYAML = "  security: {type: SecurityProfile, profile: strict-overlay}\n  admission: {type: AdmissionProfile, profile: none}\n"

// TestClusterSignStrictOverlay: three clustered sentinels under strict-overlay with channel
// encryption and strict stickiness, as the default compose stack runs one; every node holds a
// certificate of the fabric's CA for its own path. Replica r1 on s1, a client on s0 and one
// on s2: every call is answered by r1 through an encrypted channel (SecureOpen/SecureAccept
// cross the bus, so do the sealed Data), each side having verified the other's certificate-
// bound key fetched from its own sentinel, which learnt it from the cluster's key directory
// and checked its x5c chain and sid against its own trust bundle.
func TestClusterSignStrictOverlay(t *testing.T) {
	root := newTestCA(t, "s0")
	cf := startClusterSpec(t, clusterSpec{n: 3, grace: "2s",
		node: strictClusterYAML + "  stickiness: {type: AFTLoadBalancerStickinessManager, security_level: strict}\n",
		env: func(int) map[string]string {
			return map[string]string{"FAME_CA_CERTS": string(root.auth.RootPEM()), "FAME_DEFAULT_ENCRYPTION_LEVEL": "channel"}
		}})
	on := func(sent string) *testCA { return &testCA{t: t, auth: root.auth, sent: sent} }
	r1 := cf.procs[1].startReplica("r1", "*.fame.fabric", nil, func(c *node.Config) {
		on("s1").strict(c, "r1")
		c.EncryptionLevel = "channel"
	})
	cf.waitReplicas(1)
	for _, s := range []int{0, 2} {
		cfg := cf.clientConfig(s, false)
		on(cf.ids[s]).strict(&cfg, "client-"+cf.ids[s])
		cfg.EncryptionLevel = "channel"
		c := cf.procs[s].connect(cfg)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				var who string
				if err := c.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who); err != nil || who != "r1" {
					t.Errorf("client on %s: whoami %q, %v", cf.ids[s], who, err)
				}
			}()
		}
		wg.Wait()
		var sum int
		if err := c.Call(context.Background(), mathagent.Address, "multiply", map[string]any{"x": 6, "y": 7}, &sum); err != nil || sum != 42 {
			t.Fatalf("client on %s: multiply(6, 7) = %d, %v", cf.ids[s], sum, err)
		}
		if c.SecureChannels() == 0 {
			t.Errorf("client on %s: no secure channel open, want its calls encrypted", cf.ids[s])
		}
		if r := c.Refusals(); len(r) != 0 {
			t.Errorf("client on %s refused: %v", cf.ids[s], r)
		}
		if n := cf.clusterKeys(s, "served_peer_key"); n < 1 {
			t.Errorf("%s served %v peer keys, want r1's", cf.ids[s], n)
		}
	}
	if n := cf.clusterKeys(1, "served_peer_key"); n < 2 {
		t.Errorf("s1 served %v peer keys, want both clients'", n)
	}
	if r := r1.Refusals(); len(r) != 0 {
		t.Errorf("r1 refused: %v", r)
	}
	for i := range cf.procs {
		if n := cf.clusterKeys(i, "invalid"); n != 0 {
			t.Errorf("%s refused %v keys from peers", cf.ids[i], n)
		}
	}
}

// TestClusterSignNodesMove: under overlay, kill -9 of s1, where replica r1 and one client are
// attached; both re-attach to another sentinel keeping their keys (one process, one key
// pair), so each now signs with the sid of a new path. Their new sentinel accepts the kid (the
// same node moving: same system id, same public key) and vouches for it cluster-wide; a node
// that cached the kid under the old path asks its sentinel again instead of refusing. The
// client that stayed on s0 and the one that moved are both answered by r1 ten times, and no
// node refused anything.
func TestClusterSignNodesMove(t *testing.T) {
	cf := startClusterSpec(t, clusterSpec{n: 3, grace: "40s", node: overlayClusterYAML})
	cf.procs[1].startReplica("r1", "*.fame.fabric", nil, func(c *node.Config) { overlayNode(c); c.AttachURL = cf.rotating(1) })
	cf.waitReplicas(1)
	var clients []*node.Node
	for _, home := range []int{0, 1} {
		cfg := cf.clientConfig(home, home == 1)
		overlayNode(&cfg)
		c := cf.procs[home].connect(cfg)
		if who := whoami(t, c); who != "r1" {
			t.Fatalf("client on %s: answered by %q before the kill", cf.ids[home], who)
		}
		clients = append(clients, c)
	}
	if err := cf.procs[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-cf.procs[1].exited
	for _, i := range []int{0, 2} {
		waitUntil(t, 15*time.Second, cf.ids[i]+" seeing s1 down", func() bool {
			return cf.procs[i].metric(t, "fame_cluster_peer_transitions_total", `state="down"`) >= 1
		})
	}
	cf.waitReplicas(1, 1)
	for i, c := range clients {
		servesTen(t, c, "r1")
		if r := c.Refusals(); len(r) != 0 {
			t.Errorf("client %d refused: %v", i, r)
		}
	}
}
