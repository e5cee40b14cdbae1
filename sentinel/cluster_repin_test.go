package sentinel

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/envelope"
)

// readType reads p's envelopes until one of frame type ft arrives (nil after d).
func readType(p *rawPeer, ft string, d time.Duration) *envelope.Envelope {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		e, err := p.read(left)
		if err != nil {
			return nil
		}
		if e.FrameType() == ft {
			return e
		}
	}
}

// openChannel sends a SecureOpen for cid from cli to math@fame.fabric and returns which of
// reps received it.
func openChannel(t *testing.T, cli *rawPeer, cid string, reps ...*rawPeer) (holder *rawPeer, others []*rawPeer) {
	t.Helper()
	cli.sendFrame(&envelope.SecureOpen{CID: cid, EphPub: "AAAA", Alg: "CHACHA20P1305"}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo = "math@fame.fabric", "__rpc__x@"+cli.path
	})
	for i, r := range reps {
		if readType(r, envelope.TypeSecureOpen, time.Second) != nil {
			return r, append(append([]*rawPeer{}, reps[:i]...), reps[i+1:]...)
		}
	}
	t.Fatal("no replica received the SecureOpen")
	return nil, nil
}

// sendOnChannel sends a request encrypted (as far as the router can tell) for channel cid.
func sendOnChannel(cli *rawPeer, cid string) *envelope.Envelope {
	return cli.sendFrame(&envelope.Data{Payload: json.RawMessage(`"ciphertext"`)}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo, e.RType = "math@fame.fabric", "__rpc__x@"+cli.path, envelope.RTypeReply
		sec, _ := json.Marshal(envelope.Sec{Enc: &envelope.Encryption{Alg: "chacha20-poly1305-channel", Kid: cid, Val: "00"}})
		e.Sec = sec
	})
}

// TestClusterLostReplicaSecureClose: a replica on another sentinel holds a channel of a client
// attached here and leaves for good (it detaches, its sentinel withdraws it). Once the grace
// window has passed, the client gets a SecureClose for the channel at once, without calling
// (once, however long the replica stays away); a request still encrypted for it is nacked
// CHANNEL_CLOSED, not routed to the other replica; the session's next call re-pins there.
func TestClusterLostReplicaSecureClose(t *testing.T) {
	const grace = 300 * time.Millisecond
	m := newMemCluster()
	s0 := startClusteredGrace(t, m, "s0", grace)
	s1 := startClusteredGrace(t, m, "s1", grace)
	ra, rb := dialRaw(t, s1, "ra"), dialRaw(t, s1, "rb")
	for _, r := range []*rawPeer{ra, rb} {
		r.attach("*.fame.fabric")
		if ack := r.bind("math@*.fame.fabric"); !ack.OK {
			t.Fatalf("bind: %+v", ack)
		}
	}
	cli := dialRaw(t, s0, "cli")
	cli.attach()
	const cid = "auto-math@fame.fabric-lost1"
	holder, others := openChannel(t, cli, cid, ra, rb)
	other := others[0]

	_ = holder.ws.CloseNow()
	lostAt := time.Now()
	sc := readType(cli, envelope.TypeSecureClose, 5*time.Second)
	if sc == nil {
		t.Fatal("client got no SecureClose for the channel of the lost replica")
	}
	t.Logf("SecureClose %v after the replica left (grace %v)", time.Since(lostAt).Round(time.Millisecond), grace)
	f, _ := sc.DecodeFrame()
	if got := f.(*envelope.SecureClose).CID; got != cid {
		t.Fatalf("SecureClose for %q, want %q", got, cid)
	}
	// The counter moves just after the SecureClose is queued: the client may read it first.
	waitClustered(t, "fame_cluster_secure_close_total{why=lost} = 1", func() bool {
		return counterValue(t, s0.cl.m.closes.WithLabelValues(whyLost)) == 1
	})

	req := sendOnChannel(cli, cid)
	nack := readType(cli, envelope.TypeDeliveryAck, 5*time.Second)
	if nack == nil {
		t.Fatal("no nack for a request on the closed channel")
	}
	nf, _ := nack.DecodeFrame()
	if ack := nf.(*envelope.DeliveryAck); ack.OK || ack.Code != envelope.CodeChannelClosed || ack.RefID != req.ID {
		t.Fatalf("nack = %+v, want CHANNEL_CLOSED for %s", ack, req.ID)
	}
	// A few sweeps later: still one SecureClose.
	time.Sleep(4 * grace)
	if readType(cli, envelope.TypeSecureClose, 100*time.Millisecond) != nil {
		t.Fatal("a second SecureClose for the same channel")
	}
	if n := counterValue(t, s0.cl.m.closes.WithLabelValues(whyLost)); n != 1 {
		t.Fatalf("fame_cluster_secure_close_total{why=lost} = %v, want 1", n)
	}
	// The session re-pins to the other replica at its next call.
	call := cli.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"whoami"}`)
	if got := readType(other, envelope.TypeData, 5*time.Second); got == nil || got.ID != call.ID {
		t.Fatalf("the other replica did not get the session's next call: %v", got)
	}
	if n := counterValue(t, s0.cl.m.repins); n != 1 {
		t.Fatalf("fame_cluster_repins_total = %v, want 1", n)
	}
}

// TestClusterDrainingReplicaMovesWithoutNack: the sentinel of the replica a client's session
// and channel are pinned to starts draining. The client gets a SecureClose for the channel at
// once; a request still encrypted for it is delivered to its replica (the keys are there, and
// a draining sentinel still delivers); the session's next call goes to the other replica,
// with no grace window and no nack.
func TestClusterDrainingReplicaMovesWithoutNack(t *testing.T) {
	m := newMemCluster()
	s0 := startClustered(t, m, "s0")
	s1, s2 := startClustered(t, m, "s1"), startClustered(t, m, "s2")
	ra, rb := dialRaw(t, s1, "ra"), dialRaw(t, s2, "rb")
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
	hs := "s1"
	if holder == rb {
		hs = "s2"
	}
	m.setDraining(hs)
	s0.cl.wake()

	sc := readType(cli, envelope.TypeSecureClose, 5*time.Second)
	if sc == nil {
		t.Fatal("client got no SecureClose for the channel on the draining sentinel's replica")
	}
	if f, _ := sc.DecodeFrame(); f.(*envelope.SecureClose).CID != cid {
		t.Fatalf("SecureClose %s, want cid %s", sc.Frame, cid)
	}
	// The counter moves just after the SecureClose is queued: the client may read it first.
	waitClustered(t, "fame_cluster_secure_close_total{why=draining} = 1", func() bool {
		return counterValue(t, s0.cl.m.closes.WithLabelValues(whyDraining)) == 1
	})
	if n := counterValue(t, s0.cl.m.closes.WithLabelValues(whyReplicaDrain)); n != 0 {
		t.Fatalf("fame_cluster_secure_close_total{why=replica_drain} = %v: a sentinel's drain is not a replica's", n)
	}
	req := sendOnChannel(cli, cid)
	if got := readType(holder, envelope.TypeData, 5*time.Second); got == nil || got.ID != req.ID {
		t.Fatalf("the request on the channel did not reach its draining replica: %v", got)
	}
	call := cli.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"whoami"}`)
	if got := readType(other, envelope.TypeData, 5*time.Second); got == nil || got.ID != call.ID {
		t.Fatalf("the session's next call did not go to the other replica: %v", got)
	}
	if e := readType(cli, envelope.TypeDeliveryAck, 200*time.Millisecond); e != nil {
		t.Fatalf("client got %s, want no nack", e.Frame)
	}
	if n := counterValue(t, s0.cl.m.graceNacks); n != 0 {
		t.Fatalf("fame_cluster_grace_nacks_total = %v, want 0", n)
	}
	if n := counterValue(t, s0.cl.m.repins); n != 1 {
		t.Fatalf("fame_cluster_repins_total = %v, want 1", n)
	}
}

// TestClusterAwayPoolNackedRetryable: every replica of a pool is away for a moment (their
// sentinel silent: the directory still lists them, down). A new session's call is nacked
// PEER_UNREACHABLE, which at-least-once callers re-send, not NO_ROUTE, which they give up
// on; an address no replica serves is still NO_ROUTE.
func TestClusterAwayPoolNackedRetryable(t *testing.T) {
	m := newMemCluster()
	s0 := startClustered(t, m, "s0")
	m.mu.Lock()
	m.repls["ra"] = cluster.Replica{ID: "ra", Sentinel: "s9", State: cluster.ReplicaDown, Pools: []string{"math@*.fame.fabric"}}
	m.mu.Unlock()
	cli := dialRaw(t, s0, "cli")
	cli.attach()
	for to, code := range map[string]string{"math@fame.fabric": envelope.CodePeerUnreachable, "nobody@fame.fabric": envelope.CodeNoRoute} {
		req := cli.call(to, `{"jsonrpc":"2.0","id":"1","method":"whoami"}`)
		nack := readType(cli, envelope.TypeDeliveryAck, 5*time.Second)
		if nack == nil {
			t.Fatalf("%s: no nack", to)
		}
		f, _ := nack.DecodeFrame()
		if ack := f.(*envelope.DeliveryAck); ack.OK || ack.Code != code || ack.RefID != req.ID {
			t.Fatalf("%s: nack %+v, want %s", to, ack, code)
		}
	}
	if n := counterValue(t, s0.cl.m.awayNacks); n != 1 {
		t.Fatalf("fame_cluster_away_nacks_total = %v, want 1", n)
	}
}

// TestClusterReplicaBetweenSentinels: the only replica of a pool leaves its sentinel (it is
// on its way to another one, within the grace window): nothing of the pool is live or even
// listed. A call of a session bound to it is nacked PEER_UNREACHABLE, which at-least-once
// callers re-send, not NO_ROUTE, which they give up on; once it re-attaches (here, to s0),
// the session is served by it again.
func TestClusterReplicaBetweenSentinels(t *testing.T) {
	m := newMemCluster()
	s0, s1 := startClustered(t, m, "s0"), startClustered(t, m, "s1")
	ra := dialRaw(t, s1, "ra")
	ra.attach("*.fame.fabric")
	if ack := ra.bind("math@*.fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}
	cli := dialRaw(t, s0, "cli")
	cli.attach()
	call := cli.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"1","method":"whoami"}`)
	if got := readType(ra, envelope.TypeData, 5*time.Second); got == nil || got.ID != call.ID {
		t.Fatalf("ra did not get the first call: %v", got)
	}
	_ = ra.ws.CloseNow()
	waitClustered(t, "ra out of the directory", func() bool { _, ok := (&memDir{m, "s0"}).Get("ra"); return !ok })
	req := cli.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"2","method":"whoami"}`)
	// The first call, in flight on ra when it left, is nacked ROUTE_CONNECTOR_CLOSED first.
	var ack *envelope.DeliveryAck
	for ack == nil || ack.RefID != req.ID {
		nack := readType(cli, envelope.TypeDeliveryAck, 5*time.Second)
		if nack == nil {
			t.Fatal("no nack while the replica is between sentinels")
		}
		f, _ := nack.DecodeFrame()
		ack = f.(*envelope.DeliveryAck)
	}
	if ack.OK || ack.Code != envelope.CodePeerUnreachable {
		t.Fatalf("nack %+v, want PEER_UNREACHABLE for %s", ack, req.ID)
	}
	if n := counterValue(t, s0.cl.m.graceNacks); n != 1 {
		t.Fatalf("fame_cluster_grace_nacks_total = %v, want 1", n)
	}
	back := dialRaw(t, s0, "ra")
	back.attach("*.fame.fabric")
	if ack := back.bind("math@*.fame.fabric"); !ack.OK {
		t.Fatalf("re-bind: %+v", ack)
	}
	again := cli.call("math@fame.fabric", `{"jsonrpc":"2.0","id":"3","method":"whoami"}`)
	if got := readType(back, envelope.TypeData, 5*time.Second); got == nil || got.ID != again.ID {
		t.Fatalf("the re-attached replica did not get the session's call: %v", got)
	}
}
