package sentinel

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/stickiness"
)

const clusterAdminToken = "admin-token-0123456789"

// startClusteredAdmin is startClustered with an admin token, for POST /admin/replicas/{id}/drain.
func startClusteredAdmin(t *testing.T, m *memCluster, id string) *testSentinel {
	t.Helper()
	tbl, err := stickiness.NewTable(stickiness.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return startSentinel(t, map[string]string{"FAME_NODE_ID": id, "FAME_ADMIN_TOKEN": clusterAdminToken},
		WithCluster(ClusterLink{Store: cluster.NewLocalStore(tbl, id), Bus: &memBus{m, id}, Directory: &memDir{m, id}}))
}

func postReplicaDrain(s *testSentinel, id string) (int, string) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/admin/replicas/"+id+"/drain", nil)
	r.Header.Set("Authorization", "Bearer "+clusterAdminToken)
	s.Handler().ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// TestClusterReplicaDrainAcrossSentinels: a replica on s1 holds the session and channel of a
// client on s0. The admin drain on s0 (not the replica's sentinel) is refused 409 naming s1;
// on s1 it is accepted and the replica is listed draining in the directory. s0 then sends
// the client one SecureClose for the channel, nacks a request still encrypted for it
// CHANNEL_CLOSED (not run on the draining replica) and moves the session's next call to the
// other replica.
func TestClusterReplicaDrainAcrossSentinels(t *testing.T) {
	m := newMemCluster()
	s0, s1 := startClusteredAdmin(t, m, "s0"), startClusteredAdmin(t, m, "s1")
	ra, rb := dialRaw(t, s1, "ra"), dialRaw(t, s1, "rb")
	for _, r := range []*rawPeer{ra, rb} {
		r.attach("*.fame.fabric")
		if ack := r.bind("math@*.fame.fabric"); !ack.OK {
			t.Fatalf("bind: %+v", ack)
		}
	}
	cli := dialRaw(t, s0, "cli")
	cli.attach()
	const cid = "auto-math@fame.fabric-drain1"
	holder, others := openChannel(t, cli, cid, ra, rb)
	other := others[0]
	hid := strings.TrimPrefix(holder.path, "/s1/")

	code, body := postReplicaDrain(s0, hid)
	if code != http.StatusConflict || !strings.Contains(body, "attached to sentinel s1") {
		t.Fatalf("drain on s0: %d %q, want 409 naming s1", code, body)
	}
	if n := counterValue(t, s0.sticky.drains.refusals.WithLabelValues("attached_elsewhere")); n != 1 {
		t.Fatalf("fame_replica_drain_refusals_total{reason=attached_elsewhere} = %v, want 1", n)
	}
	if code, body := postReplicaDrain(s1, hid); code != http.StatusAccepted {
		t.Fatalf("drain on s1: %d %q", code, body)
	}
	if r, _ := (&memDir{m, "s0"}).Get(hid); r.State != cluster.ReplicaDraining {
		t.Fatalf("directory state of %s = %q, want draining", hid, r.State)
	}
	sc := readType(cli, envelope.TypeSecureClose, 5*time.Second)
	if sc == nil {
		t.Fatal("client got no SecureClose for the channel of the drained replica")
	}
	f, _ := sc.DecodeFrame()
	if got := f.(*envelope.SecureClose).CID; got != cid {
		t.Fatalf("SecureClose for %q, want %q", got, cid)
	}
	req := sendOnChannel(cli, cid)
	nack := readType(cli, envelope.TypeDeliveryAck, 5*time.Second)
	if nack == nil {
		t.Fatal("no nack for a request on the closed channel")
	}
	nf, _ := nack.DecodeFrame()
	if ack := nf.(*envelope.DeliveryAck); ack.OK || ack.Code != envelope.CodeChannelClosed || ack.RefID != req.ID {
		t.Fatalf("nack = %+v, want CHANNEL_CLOSED for %s", ack, req.ID)
	}
	if got := readType(holder, envelope.TypeData, 200*time.Millisecond); got != nil {
		t.Fatalf("the drained replica got %s: a request on the closed channel ran there", got.ID)
	}
	call := cli.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"whoami"}`)
	if got := readType(other, envelope.TypeData, 5*time.Second); got == nil || got.ID != call.ID {
		t.Fatalf("the other replica did not get the session's next call: %v", got)
	}
	if readType(cli, envelope.TypeSecureClose, 300*time.Millisecond) != nil {
		t.Fatal("a second SecureClose for the same channel")
	}
	if n := counterValue(t, s0.cl.m.closes.WithLabelValues(whyReplicaDrain)); n != 1 {
		t.Fatalf("fame_cluster_secure_close_total{why=replica_drain} = %v, want 1", n)
	}
	if n := counterValue(t, s0.cl.m.repins); n != 1 {
		t.Fatalf("fame_cluster_repins_total = %v, want 1", n)
	}
}
