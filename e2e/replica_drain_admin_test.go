package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// TestReplicaDrainAdmin: an operator drains an SDK replica with POST
// /admin/replicas/{id}/drain. The answer carries the pinned-session count; the replica
// learns of the drain at once (the sentinel pushes the status, no waiting for its next
// heartbeat: the heartbeat interval here is far longer than the test's wait), its Drain
// returns nil once its sessions moved, and the clients keep being served by the other
// replica. Draining that last replica is accepted with the warning that the pool will be
// empty, in the answer and in the log.
func TestReplicaDrainAdmin(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken})
	slowHB := func(c *node.Config) { c.HeartbeatInterval = time.Minute }
	reps := map[string]*node.Node{
		"a1": f.startReplica("a1", "*.fame.fabric", nil, slowHB),
		"a2": f.startReplica("a2", "*.fame.fabric", nil, slowHB),
	}
	var clients []*node.Node
	for i := 0; i < 8; i++ {
		c := f.nodeConfig()
		c.SystemID = fmt.Sprintf("client%d", i)
		n := f.connect(c)
		whoami(t, n)
		clients = append(clients, n)
	}
	pinned := pinnedOf(t, f)
	victim, other := "a1", "a2"
	if pinned["a2"] > pinned["a1"] {
		victim, other = "a2", "a1"
	}
	status, body := httpDo(t, f, http.MethodPost, "/admin/replicas/"+victim+"/drain", drainAdminToken)
	if status != http.StatusAccepted {
		t.Fatalf("POST drain: %d %s", status, body)
	}
	var ans struct {
		Draining       bool     `json:"draining"`
		PinnedSessions int      `json:"pinnedSessions"`
		Pools          []string `json:"pools"`
		Warning        string   `json:"warning"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	if !ans.Draining || ans.PinnedSessions != pinned[victim] || len(ans.Pools) != 1 || ans.Warning != "" {
		t.Fatalf("answer %s, want draining with %d pinned sessions, one pool, no warning", body, pinned[victim])
	}
	select {
	case <-reps[victim].DrainRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("the replica did not learn of the drain (pushed status)")
	}
	// The clients call on: idle sessions move, every call is answered by the other replica.
	for _, c := range clients {
		if who := whoami(t, c); who != other {
			t.Fatalf("call during the drain answered by %s, want %s", who, other)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := reps[victim].Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	ds := replicaDrainsOf(t, f)
	if len(ds) != 1 || ds[0].By != "admin" || ds[0].State != "drained" || ds[0].PinnedSessions != 0 || ds[0].Moved != pinned[victim] {
		t.Fatalf("/stats replicaDrains = %+v, want %s drained by admin, 0 pinned, %d moved", ds, victim, pinned[victim])
	}
	_ = reps[victim].Close()
	waitUntil(t, 5*time.Second, "the drained replica's drain state to go with its connection", func() bool {
		return len(replicaDrainsOf(t, f)) == 0
	})

	// The last replica of the pool: drained all the same, with the warning.
	status, body = httpDo(t, f, http.MethodPost, "/admin/replicas/"+other+"/drain", drainAdminToken)
	if status != http.StatusAccepted || !strings.Contains(body, "the pool will be empty") || !strings.Contains(body, `"lastOfPools":["math@*.fame.fabric"]`) {
		t.Fatalf("POST drain of the last replica: %d %s, want 202 with the empty-pool warning", status, body)
	}
	if !strings.Contains(f.logs.String(), "it is the last replica of its pool") {
		t.Fatal("no log line warning that the pool will be empty")
	}
	// It still serves its pool while it drains.
	servesTen(t, clients[0], other)
	if err := reps[other].Drain(ctx); err != nil {
		t.Fatalf("Drain of the last replica: %v", err)
	}
}
