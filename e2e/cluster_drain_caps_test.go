package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/agent"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
)

const clusterDrainToken = "e2e-cluster-admin-token-0123456789"

// TestClusterReplicaDrain: replicas r1 and r2 on s1, eight clients on s0. The admin drain of
// a replica on s0 is refused 409 naming s1 (counted); on s1 it is accepted, the replica
// learns of it, every client's next calls are answered by the other replica (s0 re-pins the
// sessions it had on the drained one), and the replica's Drain returns once drained.
func TestClusterReplicaDrain(t *testing.T) {
	cf := startClusterEnv(t, 2, "2s", "", map[string]string{"FAME_ADMIN_TOKEN": clusterDrainToken})
	reps := map[string]*node.Node{
		"r1": cf.procs[1].startReplica("r1", "*.fame.fabric", nil, nil),
		"r2": cf.procs[1].startReplica("r2", "*.fame.fabric", nil, nil),
	}
	cf.waitReplicas(2)
	var clients []*node.Node
	pinned := map[string]int{}
	for i := 0; i < 8; i++ {
		c := cf.clientConfig(0, false)
		c.SystemID = fmt.Sprintf("client%d", i)
		n := cf.procs[0].connect(c)
		pinned[whoami(t, n)]++
		clients = append(clients, n)
	}
	victim, other := "r1", "r2"
	if pinned["r2"] > pinned["r1"] {
		victim, other = "r2", "r1"
	}
	status, body := httpDo(t, cf.procs[0].fabric, http.MethodPost, "/admin/replicas/"+victim+"/drain", clusterDrainToken)
	if status != http.StatusConflict || !strings.Contains(body, "attached to sentinel s1") {
		t.Fatalf("drain on s0: %d %s, want 409 naming s1", status, body)
	}
	if n := cf.procs[0].metric(t, "fame_replica_drain_refusals_total", `reason="attached_elsewhere"`); n != 1 {
		t.Fatalf("fame_replica_drain_refusals_total{reason=attached_elsewhere} = %v, want 1", n)
	}
	start := time.Now()
	if status, body := httpDo(t, cf.procs[1].fabric, http.MethodPost, "/admin/replicas/"+victim+"/drain", clusterDrainToken); status != http.StatusAccepted {
		t.Fatalf("drain on s1: %d %s", status, body)
	}
	select {
	case <-reps[victim].DrainRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("the replica did not learn of the drain")
	}
	waitUntil(t, 10*time.Second, "s0 seeing the replica draining", func() bool {
		return cf.procs[0].metric(t, "fame_cluster_directory_replicas", `state="draining"`) == 1
	})
	seen := time.Since(start)
	for _, c := range clients {
		for k := 0; k < 3; k++ {
			if who := whoami(t, c); who != other {
				t.Fatalf("call during the drain answered by %s, want %s", who, other)
			}
		}
	}
	if n := cf.procs[0].metric(t, "fame_cluster_repins_total"); n != float64(pinned[victim]) {
		t.Fatalf("fame_cluster_repins_total on s0 = %v, want the %d sessions of %s", n, pinned[victim], victim)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := reps[victim].Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	t.Logf("drain of %s (%d of 8 sessions): draining on s0 %v after the POST on s1, drained %v after it",
		victim, pinned[victim], seen.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestClusterCapabilityRoute: a provider of calc.v1 on s1, a client on s0 with no provider:
// capability calls are answered across the bus; a capability nobody advertises is still
// NO_ROUTE; ten more calls are answered.
func TestClusterCapabilityRoute(t *testing.T) {
	cf := startCluster(t, 2, "2s")
	ctx := context.Background()
	srv := cf.procs[1].connect(cf.procs[1].nodeConfig("fame.fabric"))
	if err := srv.ServeCapabilities(ctx, "calc@fame.fabric", node.Ops{
		"add": agent.Handle(func(_ context.Context, in struct{ A, B int }) (int, error) { return in.A + in.B, nil }),
	}, []string{"calc.v1"}); err != nil {
		t.Fatal(err)
	}
	cli := cf.procs[0].connect(cf.clientConfig(0, false))
	var sum int
	waitUntil(t, 10*time.Second, "a capability call answered across the cluster", func() bool {
		return cli.CallCapabilities(ctx, []string{"calc.v1"}, "add", map[string]int{"A": 3, "B": 4}, &sum) == nil && sum == 7
	})
	if err := cli.CallCapabilities(ctx, []string{"nobody.v1"}, "add", nil, nil); !errors.Is(err, node.ErrNoRoute) {
		t.Fatalf("call to an unadvertised capability: %v, want NO_ROUTE", err)
	}
	for i := 0; i < 10; i++ {
		if err := cli.CallCapabilities(ctx, []string{"calc.v1"}, "add", map[string]int{"A": i, "B": 1}, &sum); err != nil || sum != i+1 {
			t.Fatalf("call %d = %d, %v", i, sum, err)
		}
	}
	if n := cf.procs[0].metric(t, "fame_cluster_routed_total", `where="remote"`); n < 11 {
		t.Fatalf("s0 remote routes %v, want at least 11", n)
	}
}

// TestClusterStreamPeerDown: a client on s0 reads a stream served on s1, which stalls after
// its first item; s1 is killed (kill -9). The client's next read ends with a PEER_UNREACHABLE
// nack once s0 sees s1 down, not with its call timeout.
func TestClusterStreamPeerDown(t *testing.T) {
	cf := startCluster(t, 2, "2s")
	ctx := context.Background()
	srv := cf.procs[1].connect(cf.procs[1].nodeConfig("fame.fabric"))
	if err := srv.Serve(ctx, "slow@fame.fabric", node.Ops{
		"items": node.Streaming(func(ctx context.Context, _ json.RawMessage, emit func(any) error) error {
			if err := emit(1); err != nil {
				return err
			}
			<-ctx.Done() // stalls: the second item never comes
			return ctx.Err()
		}),
	}); err != nil {
		t.Fatal(err)
	}
	cfg := cf.clientConfig(0, false)
	cfg.CallTimeout = 30 * time.Second
	cli := cf.procs[0].connect(cfg)
	var st *node.Stream
	waitUntil(t, 10*time.Second, "the stream's first item across the cluster", func() bool {
		s, err := cli.Stream(ctx, "slow@fame.fabric", "items", nil)
		if err != nil {
			return false
		}
		if _, err := s.Next(ctx); err != nil {
			return false
		}
		st = s
		return true
	})
	killed := time.Now()
	_ = cf.procs[1].cmd.Process.Kill()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := st.Next(rctx)
	took := time.Since(killed)
	if err == nil || !strings.Contains(err.Error(), envelope.CodePeerUnreachable) {
		t.Fatalf("read after the kill: %v after %v, want a PEER_UNREACHABLE nack", err, took)
	}
	if n := cf.procs[0].metric(t, "fame_cluster_peer_nacks_total"); n < 1 {
		t.Fatalf("fame_cluster_peer_nacks_total = %v, want at least 1", n)
	}
	t.Logf("stream nacked %v after kill -9 of its sentinel: %v", took.Round(time.Millisecond), err)
}
