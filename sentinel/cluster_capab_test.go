package sentinel

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// advertise binds addr for p and advertises caps for it.
func (p *rawPeer) advertise(addr string, caps ...string) {
	p.t.Helper()
	if ack := p.bind(addr); !ack.OK {
		p.t.Fatalf("bind %s: %+v", addr, ack)
	}
	p.sendFrame(&envelope.CapabilityAdvertise{Address: addr, Capabilities: caps}, func(e *envelope.Envelope) {
		e.ReplyTo, e.RType = "__sys__@"+p.path, envelope.RTypeAck
	})
	e := readType(p, envelope.TypeCapabilityAdvertiseAck, 5*time.Second)
	if e == nil {
		p.t.Fatal("no CapabilityAdvertiseAck")
	}
	f, _ := e.DecodeFrame()
	if ack := f.(*envelope.CapabilityAdvertiseAck); !ack.OK {
		p.t.Fatalf("advertise: %+v", ack)
	}
}

// callCaps sends a Data request addressed by capabilities only.
func (p *rawPeer) callCaps(caps ...string) *envelope.Envelope {
	return p.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"add"}`)}, func(e *envelope.Envelope) {
		e.Capabilities, e.ReplyTo, e.RType = caps, "__rpc__x@"+p.path, envelope.RTypeReply
	})
}

// TestClusterCapabilityRouting: a request addressed by capabilities finds a provider attached
// to another sentinel when none is here (and its reply comes back); a provider here is
// preferred; once that one drains, the live provider on the peer sentinel takes the next
// request; capabilities nobody advertises are still nacked NO_ROUTE.
func TestClusterCapabilityRouting(t *testing.T) {
	m := newMemCluster()
	s0, s1 := startClusteredAdmin(t, m, "s0"), startClusteredAdmin(t, m, "s1")
	remote := dialRaw(t, s1, "remote")
	remote.attach("*.fame.fabric")
	remote.advertise("calc@fame.fabric", "calc.v1", "calc.v2")
	cli := dialRaw(t, s0, "cli")
	cli.attach()

	req := cli.callCaps("calc.v1", "calc.v2")
	got := readType(remote, envelope.TypeData, 5*time.Second)
	if got == nil || got.ID != req.ID {
		t.Fatalf("the provider on s1 did not get the capability request: %v", got)
	}
	remote.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","result":7}`)}, func(e *envelope.Envelope) {
		e.To, e.CorrID = got.ReplyTo, got.CorrID
	})
	if reply := readType(cli, envelope.TypeData, 5*time.Second); reply == nil || reply.CorrID != req.CorrID {
		t.Fatalf("the client did not get the reply: %v", reply)
	}

	nobody := cli.callCaps("calc.v1", "nobody.v1")
	nack := readType(cli, envelope.TypeDeliveryAck, 5*time.Second)
	if nack == nil {
		t.Fatal("no nack for capabilities nobody advertises")
	}
	f, _ := nack.DecodeFrame()
	if ack := f.(*envelope.DeliveryAck); ack.OK || ack.Code != envelope.CodeNoRoute || ack.RefID != nobody.ID {
		t.Fatalf("nack %+v, want NO_ROUTE", ack)
	}

	local := dialRaw(t, s0, "local")
	local.attach("*.fame.fabric")
	local.advertise("calc2@fame.fabric", "calc.v1")
	if ack := local.bind("calc@*.fame.fabric"); !ack.OK { // the admin drain takes pool replicas
		t.Fatalf("bind: %+v", ack)
	}
	req = cli.callCaps("calc.v1")
	if got := readType(local, envelope.TypeData, 5*time.Second); got == nil || got.ID != req.ID {
		t.Fatalf("the provider here did not get the request: %v", got)
	}
	if code, body := postReplicaDrain(s0, "local"); code != http.StatusAccepted {
		t.Fatalf("drain local: %d %q", code, body)
	}
	req = cli.callCaps("calc.v1")
	if got := readType(remote, envelope.TypeData, 5*time.Second); got == nil || got.ID != req.ID {
		t.Fatalf("with the provider here draining, the one on s1 did not get the request: %v", got)
	}
	if n := counterValue(t, s0.cl.m.routed.WithLabelValues("remote")); n != 2 {
		t.Fatalf("s0 remote routes %v, want 2", n)
	}
}
