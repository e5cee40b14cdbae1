package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
)

// TestAttackReplicaDrainForeign: a peer that is not the replica tries to drain it. The drain
// is asked for with a NodeHeartbeat carrying {"drain":{"request":true}}; heartbeats are
// hop-local, so the only thing mallory can do is send one on its own connection naming the
// victim's system id (refused: DRAIN_REFUSED to its __sys__ inbox, counted, the victim keeps
// its sessions) or drains itself though it is in no pool, or sends a drain payload that cannot
// be read (both refused DRAIN_REFUSED and counted), or forge the sentinel's "drained" answer, a NodeHeartbeatAck routed to the
// victim (refused by the victim's SDK: a heartbeat ack with a "to" is not its sentinel's).
// Under every profile the victim stays a live, non-draining member and serves the next 10
// calls of a real client.
func TestAttackReplicaDrainForeign(t *testing.T) {
	for _, ap := range attackProfiles {
		t.Run(ap.name, func(t *testing.T) {
			env := map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken}
			for k, v := range ap.env {
				env[k] = v
			}
			f := newFabric(t, env)
			victim := f.startReplica("victim", "*.fame.fabric", nil, ap.mod(nil))
			f.startReplica("other", "*.fame.fabric", nil, ap.mod(nil))
			client := f.sdkClient(ap, "client1")
			servesTen(t, client, "victim", "other")

			// Mallory is an attached node, not a member of the pool (a member would take
			// new sessions itself and muddle the check that the victim still gets them).
			m := newHostile(t, f, ap, "mallory")
			if ack := m.attachAs(); !ack.OK {
				t.Fatalf("attach: %+v", ack)
			}
			secBefore := f.refusals(t, "drain_foreign_system_id")
			drainBefore := f.metric(t, "fame_replica_drain_refusals_total", `reason="foreign_system_id"`)

			// 1. A drain heartbeat naming the victim.
			payload, _ := json.Marshal(envelope.DrainPayload{Drain: &envelope.DrainStatus{Request: true}})
			hb := m.newEnv(&envelope.NodeHeartbeat{SystemID: "victim", Payload: payload})
			m.sendAs(hb)
			m.expectSysNack("DRAIN_REFUSED", hb.ID)
			if got := f.refusals(t, "drain_foreign_system_id"); got != secBefore+1 {
				t.Fatalf("fame_security_refusals_total{drain_foreign_system_id}: %v -> %v, want +1", secBefore, got)
			}
			if got := f.metric(t, "fame_replica_drain_refusals_total", `reason="foreign_system_id"`); got != drainBefore+1 {
				t.Fatalf("fame_replica_drain_refusals_total{foreign_system_id}: %v -> %v, want +1", drainBefore, got)
			}

			// 1b. A drain of mallory itself, a member of no pool: refused as the admin endpoint
			// refuses it (draining it would only slow routing down while it stays).
			notReplica := f.metric(t, "fame_replica_drain_refusals_total", `reason="not_replica"`)
			hb = m.newEnv(&envelope.NodeHeartbeat{SystemID: "mallory", Payload: payload})
			m.sendAs(hb)
			m.expectSysNack("DRAIN_REFUSED", hb.ID)
			if got := f.metric(t, "fame_replica_drain_refusals_total", `reason="not_replica"`); got != notReplica+1 {
				t.Fatalf("fame_replica_drain_refusals_total{not_replica}: %v -> %v, want +1", notReplica, got)
			}
			// 1c. A drain payload that cannot be read: refused, not ignored.
			malformed := f.refusals(t, "drain_malformed")
			hb = m.newEnv(&envelope.NodeHeartbeat{SystemID: "mallory", Payload: json.RawMessage(`{"drain":5}`)})
			m.sendAs(hb)
			m.expectSysNack("DRAIN_REFUSED", hb.ID)
			if got := f.refusals(t, "drain_malformed"); got != malformed+1 {
				t.Fatalf("fame_security_refusals_total{drain_malformed}: %v -> %v, want +1", malformed, got)
			}

			// 2. The sentinel's "drained" answer, forged and routed to the victim.
			drained, _ := json.Marshal(envelope.DrainPayload{Drain: &envelope.DrainStatus{State: envelope.DrainStateDrained, By: "admin"}})
			ack := m.newEnv(&envelope.NodeHeartbeatAck{Ack: envelope.Ack{OK: true, RefID: envelope.NewID()}, Payload: drained})
			ack.To = "__sys__@" + victim.AssignedPath()
			refusedBefore := victim.Refusals()[node.RefusedHeartbeatAckForeign]
			m.sendAs(ack)
			waitUntil(t, 5*time.Second, "the victim refusing the forged heartbeat ack", func() bool {
				return victim.Refusals()[node.RefusedHeartbeatAckForeign] > refusedBefore
			})
			select {
			case <-victim.DrainRequested():
				t.Fatal("a forged heartbeat ack made the victim believe it is being drained")
			default:
			}

			// Nothing drains: no drain started, the victim still gets new sessions.
			if got := f.metric(t, "fame_replica_drains_total", `by="self"`) + f.metric(t, "fame_replica_drains_total", `by="admin"`); got != 0 {
				t.Fatalf("fame_replica_drains_total = %v, want 0", got)
			}
			if ds := replicaDrainsOf(t, f); len(ds) != 0 {
				t.Fatalf("/stats replicaDrains = %+v, want none", ds)
			}
			servesTen(t, client, "victim", "other")
			seen := map[string]bool{}
			for i := 0; i < 12 && !(seen["victim"] && seen["other"]); i++ {
				seen[whoami(t, f.sdkClient(ap, "fresh"+string(rune('a'+i))))] = true
			}
			if !seen["victim"] {
				t.Fatalf("no new session went to the victim after the attack (saw %v): it looks drained", seen)
			}
		})
	}
}

// TestAttackReplicaDrainAdminToken: POST /admin/replicas/{id}/drain without the admin token,
// with a wrong one, and on a sentinel with no admin token configured is refused (401, 401,
// 403), counted in fame_limit_refusals_total{reason="admin_token"}, and drains nothing; the
// victim serves the next 10 calls.
func TestAttackReplicaDrainAdminToken(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": drainAdminToken})
	f.startReplica("victim", "*.fame.fabric", nil, nil)
	client := f.connect(f.nodeConfig())
	servesTen(t, client, "victim")
	before := f.metric(t, "fame_limit_refusals_total", `reason="admin_token"`)
	const path = "/admin/replicas/victim/drain"
	if got := httpStatus(t, f, http.MethodPost, path, ""); got != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", got)
	}
	if got := httpStatus(t, f, http.MethodPost, path, "wrong-token-0123456789abcdef"); got != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", got)
	}
	if got := f.metric(t, "fame_limit_refusals_total", `reason="admin_token"`); got != before+2 {
		t.Fatalf("fame_limit_refusals_total{admin_token}: %v -> %v, want +2", before, got)
	}
	if ds := replicaDrainsOf(t, f); len(ds) != 0 {
		t.Fatalf("/stats replicaDrains = %+v after refused requests, want none", ds)
	}
	servesTen(t, client, "victim")

	open := newFabric(t, nil)
	open.startReplica("victim", "*.fame.fabric", nil, nil)
	openClient := open.connect(open.nodeConfig())
	ob := open.metric(t, "fame_limit_refusals_total", `reason="admin_token"`)
	status, body := httpDo(t, open, http.MethodPost, path, "")
	if status != http.StatusForbidden || !strings.Contains(body, "no admin token is configured") {
		t.Fatalf("no admin token configured: %d %q, want 403 with the reason", status, body)
	}
	if got := open.metric(t, "fame_limit_refusals_total", `reason="admin_token"`); got != ob+1 {
		t.Fatalf("fame_limit_refusals_total{admin_token}: %v -> %v, want +1", ob, got)
	}
	servesTen(t, openClient, "victim")
}

// httpDo sends a request to the fabric (with tok as the bearer token when set) and returns
// the status and body.
func httpDo(t *testing.T, f *fabric, method, path, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+f.addr+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// replicaDrainStat is one entry of /stats replicaDrains.
type replicaDrainStat struct {
	SystemID       string   `json:"systemId"`
	State          string   `json:"state"`
	By             string   `json:"by"`
	Result         string   `json:"result"`
	PinnedSessions int      `json:"pinnedSessions"`
	InFlight       int      `json:"inFlight"`
	Moved          int      `json:"moved"`
	LastOfPools    []string `json:"lastOfPools"`
}

// replicaDrainsOf reads /stats replicaDrains (admin token from the fabric's env).
func replicaDrainsOf(t *testing.T, f *fabric) []replicaDrainStat {
	t.Helper()
	status, body := httpDo(t, f, http.MethodGet, "/stats", f.env["FAME_ADMIN_TOKEN"])
	if status != http.StatusOK {
		t.Fatalf("/stats: %d %s", status, body)
	}
	var st struct {
		ReplicaDrains []replicaDrainStat `json:"replicaDrains"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/stats: %v", err)
	}
	return st.ReplicaDrains
}
