package sentinel

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestClusterStreamTrackedPastFirstItem: a stream request forwarded to a peer sentinel stays
// tracked after its first item, so that the peer's death in the middle of the stream nacks
// the caller PEER_UNREACHABLE at once; a stream that ended (a null result) is forgotten and
// nothing is nacked for it.
func TestClusterStreamTrackedPastFirstItem(t *testing.T) {
	m := newMemCluster()
	s0, s1 := startClustered(t, m, "s0"), startClustered(t, m, "s1")
	rep := dialRaw(t, s1, "rep")
	rep.attach("*.fame.fabric")
	if ack := rep.bind("math@*.fame.fabric"); !ack.OK {
		t.Fatalf("bind: %+v", ack)
	}
	cli := dialRaw(t, s0, "cli")
	cli.attach()
	stream := func(id string) *envelope.Envelope {
		return cli.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"` + id + `","method":"fib_stream"}`)},
			func(e *envelope.Envelope) {
				e.To, e.ReplyTo, e.RType = "math@fame.fabric", "__rpc__x@"+cli.path, envelope.RTypeStream
			})
	}
	item := func(req *envelope.Envelope, payload string) {
		rep.sendFrame(&envelope.Data{Payload: json.RawMessage(payload)}, func(e *envelope.Envelope) {
			e.To, e.CorrID = req.ReplyTo, req.CorrID
		})
		got := readType(cli, envelope.TypeData, 5*time.Second)
		if got == nil || got.CorrID != req.CorrID {
			t.Fatalf("the client did not get the stream item %s: %v", payload, got)
		}
	}
	ended := stream("1")
	if got := readType(rep, envelope.TypeData, 5*time.Second); got == nil || got.ID != ended.ID {
		t.Fatalf("the replica did not get the first stream: %v", got)
	}
	item(ended, `{"jsonrpc":"2.0","id":"1","result":0}`)
	item(ended, `{"jsonrpc":"2.0","id":"1","result":null}`)
	open := stream("2")
	if got := readType(rep, envelope.TypeData, 5*time.Second); got == nil || got.ID != open.ID {
		t.Fatalf("the replica did not get the second stream: %v", got)
	}
	item(open, `{"jsonrpc":"2.0","id":"2","result":0}`)
	item(open, `{"jsonrpc":"2.0","id":"2","result":1}`)

	s0.cl.peerDown("s1") // what the bus reports when s1's heartbeats stop
	nack := readType(cli, envelope.TypeDeliveryAck, 5*time.Second)
	if nack == nil {
		t.Fatal("no nack for the stream open on the lost sentinel")
	}
	f, _ := nack.DecodeFrame()
	if ack := f.(*envelope.DeliveryAck); ack.OK || ack.Code != envelope.CodePeerUnreachable || ack.RefID != open.ID {
		t.Fatalf("nack %+v, want PEER_UNREACHABLE for the open stream %s", ack, open.ID)
	}
	if extra := readType(cli, envelope.TypeDeliveryAck, 300*time.Millisecond); extra != nil {
		f, _ := extra.DecodeFrame()
		t.Fatalf("a second nack %+v: the ended stream was still tracked", f)
	}
	if n := counterValue(t, s0.cl.m.peerNacks); n != 1 {
		t.Fatalf("fame_cluster_peer_nacks_total = %v, want 1", n)
	}
}
