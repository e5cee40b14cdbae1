package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fame-go/fame/agent"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
)

// TestCapabilityCallRoutesToAdvertiser: a call that names capabilities instead of an address
// (the reference's remoteByCapabilities) reaches the node that advertised them at bind; one
// that names a capability nobody advertised is nacked NO_ROUTE with a reason naming it, and
// the nack counter moves. The provider keeps answering capability calls afterwards.
func TestCapabilityCallRoutesToAdvertiser(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMISSION_PROFILE": "open"})
	ctx := context.Background()
	srv := f.connect(f.nodeConfig("fame.fabric"))
	if err := srv.ServeCapabilities(ctx, "calc@fame.fabric", node.Ops{
		"add": agent.Handle(func(_ context.Context, in struct{ A, B int }) (int, error) { return in.A + in.B, nil }),
	}, []string{"calc.v1"}); err != nil {
		t.Fatal(err)
	}
	// A second node serving another address must not receive calc.v1 calls.
	other := f.connect(f.nodeConfig("fame.fabric"))
	if err := other.ServeCapabilities(ctx, "other@fame.fabric", node.Ops{
		"add": node.Unary(func(context.Context, json.RawMessage) (any, error) { return -1, nil }),
	}, []string{"other.v1"}); err != nil {
		t.Fatal(err)
	}
	cli := f.connect(f.nodeConfig())
	var sum int
	if err := cli.CallCapabilities(ctx, []string{"calc.v1"}, "add", map[string]int{"A": 3, "B": 4}, &sum); err != nil || sum != 7 {
		t.Fatalf("capability call = %d, %v", sum, err)
	}

	before := f.metric(t, "fame_nacks_total", `code="`+envelope.CodeNoRoute+`"`)
	raw := dialRaw(t, f, "capraw", nil)
	raw.attach()
	req := raw.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"add","params":{}}`)}, func(e *envelope.Envelope) {
		e.Capabilities, e.ReplyTo, e.RType = []string{"nobody.v1"}, "__rpc__x@"+raw.path, envelope.RTypeReply
	})
	e := raw.recv()
	fr, _ := e.DecodeFrame()
	da, ok := fr.(*envelope.DeliveryAck)
	if !ok || da.OK || da.Code != envelope.CodeNoRoute || da.RefID != req.ID || da.Reason != "no node advertises capabilities nobody.v1" {
		t.Fatalf("want a NO_ROUTE nack naming the capability, got %s", e.Frame)
	}
	if after := f.metric(t, "fame_nacks_total", `code="`+envelope.CodeNoRoute+`"`); after != before+1 {
		t.Fatalf("fame_nacks_total{code=NO_ROUTE}: %v -> %v", before, after)
	}
	err := cli.CallCapabilities(ctx, []string{"nobody.v1"}, "add", nil, nil)
	if !errors.Is(err, node.ErrNoRoute) {
		t.Fatalf("SDK call to an unadvertised capability: %v", err)
	}
	for i := 0; i < 10; i++ {
		if err := cli.CallCapabilities(ctx, []string{"calc.v1"}, "add", map[string]int{"A": i, "B": 1}, &sum); err != nil || sum != i+1 {
			t.Fatalf("call %d after the nack = %d, %v", i, sum, err)
		}
	}
}
