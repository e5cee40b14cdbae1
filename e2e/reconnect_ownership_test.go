package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// TestCrashedNodeReconnects: a replica whose old socket is still open but silent (the process
// crashed behind a half-open connection) re-attaches with the same system id: the old
// connection fails the liveness probe and the newcomer gets the id, within about 3 s.
func TestCrashedNodeReconnects(t *testing.T) {
	f := newFabric(t, nil)
	silentAttach(t, f, "r1", "*.fame.fabric")
	f.startReplica("r2", "*.fame.fabric", nil, nil)
	start := time.Now()
	f.startReplica("r1", "*.fame.fabric", nil, nil)
	t.Logf("crashed node's id re-taken after %v", time.Since(start))
	if got := f.refusals(t, "system_id_in_use"); got != 0 {
		t.Fatalf("crashed node's reconnect was refused (%v)", got)
	}
	if n := f.poolSize(t, "math@*.fame.fabric"); n != 2 {
		t.Fatalf("pool has %d members, want 2", n)
	}
	clients := f.sessions(t, 6, nil)
	seen := map[string]bool{}
	for _, c := range clients {
		servesTenOnce(t, c, seen)
	}
	if !seen["r1"] {
		t.Fatalf("no session reached the reconnected r1 (seen %v)", seen)
	}
}

func servesTenOnce(t *testing.T, c *node.Node, seen map[string]bool) {
	t.Helper()
	who := whoami(t, c)
	seen[who] = true
	servesTen(t, c, who)
}

// TestSDKReconnectSameID: an SDK replica loses its socket while the sentinel still sees the
// old connection open (cut on the node side only). The SDK reconnects with the same system
// id; the sentinel's liveness probe finds the old connection dead and accepts it.
func TestSDKReconnectSameID(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			f := newFabric(t, ap.env)
			px := newCutProxy(t, f.addr)
			r1 := f.startReplica("r1", "*.fame.fabric", nil, ap.mod(func(c *node.Config) { c.URL = px.url() }))
			r2 := f.startReplica("r2", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			servesTen(t, client, "r1", "r2")

			firstPath := r1.AssignedPath()
			start := time.Now()
			px.cutNodeSide()
			// Drop r2 so that every call must reach the reconnected r1.
			_ = r2.Close()
			waitUntil(t, 15*time.Second, "r1 to be back in the pool alone", func() bool {
				return f.poolSize(t, "math@*.fame.fabric") == 1 && f.metric(t, "fame_route_children") == 2 &&
					!hasOldConn(t, f)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var who string
			for ctx.Err() == nil {
				if err := client.Call(ctx, "math@fame.fabric", "whoami", map[string]any{}, &who); err == nil && who == "r1" {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("SDK replica serving again after %v", time.Since(start))
			servesTen(t, client, "r1")
			if r1.AssignedPath() != firstPath {
				t.Fatalf("path changed: %s then %s", firstPath, r1.AssignedPath())
			}
			// Claims for one id wait for each other instead of being refused, and the dead
			// connection fails its probe: the reconnect is never refused.
			if got := f.refusals(t, "system_id_in_use"); got != 0 {
				t.Fatalf("system_id_in_use refusals during the reconnect: %v, want 0", got)
			}
		})
	}
}

// hasOldConn reports whether more connections are open than attached nodes (an old socket
// still waiting to be torn down).
func hasOldConn(t *testing.T, f *fabric) bool {
	return f.metric(t, "fame_connections") > f.metric(t, "fame_route_children")
}
