package cluster

import (
	"testing"

	"github.com/fame-go/fame/stickiness"
)

// TestLocalStore: without a cluster the interface is today's table.
func TestLocalStore(t *testing.T) {
	tab, err := stickiness.NewTable(stickiness.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var s BindingStore = NewLocalStore(tab, "me")
	defer s.Close()
	events := 0
	defer s.Watch(func(Event) { events++ })()

	var res Result
	b, mine := s.Create(Session, "sid", Binding{Replica: "r1"}, func(r Result) { res = r })
	if !mine || b.Replica != "r1" || !res.Won || res.Err != nil {
		t.Fatalf("create: %+v %v %+v", b, mine, res)
	}
	if r, ok := tab.Lookup("sid"); !ok || r != "r1" {
		t.Fatalf("the table does not hold the binding: %q %v", r, ok)
	}
	b, mine = s.Create(Session, "sid", Binding{Replica: "r2"}, func(r Result) { res = r })
	if mine || b.Replica != "r1" || res.Won || res.Binding.Replica != "r1" {
		t.Fatalf("create of a bound key: %+v %v %+v", b, mine, res)
	}
	if got, ok := s.Lookup(Session, "sid"); !ok || got.Replica != "r1" || got.Sentinel != "me" {
		t.Fatalf("lookup %+v %v", got, ok)
	}
	s.Update(Session, "sid", Binding{Replica: "r2", Epoch: 1}, 0, func(r Result) { res = r })
	if got, _ := s.Lookup(Session, "sid"); got.Replica != "r2" || !res.Won {
		t.Fatalf("update: %+v %+v", got, res)
	}
	s.Create(Channel, "cid", Binding{Replica: "r2", Client: "sid"}, nil)
	if lost := tab.PurgeReplica("r2"); len(lost) != 1 || lost[0].ClientSID != "sid" || len(lost[0].ChannelIDs) != 1 {
		t.Fatalf("purge through the table: %+v", lost)
	}
	if _, ok := s.Lookup(Channel, "cid"); ok {
		t.Fatal("purged channel still bound")
	}
	s.Create(Channel, "cid2", Binding{Replica: "r3", Client: "sid"}, nil)
	s.Delete(Channel, "cid2")
	if _, ok := s.Lookup(Channel, "cid2"); ok {
		t.Fatal("deleted channel still bound")
	}
	for _, bad := range []struct {
		k  Kind
		id string
		b  Binding
	}{{Session, "", Binding{Replica: "r"}}, {Kind(7), "x", Binding{Replica: "r"}}, {Channel, "x", Binding{}}} {
		res = Result{}
		if _, ok := s.Create(bad.k, bad.id, bad.b, func(r Result) { res = r }); ok || res.Err == nil {
			t.Fatalf("bad create %+v accepted", bad)
		}
	}
	if events != 0 {
		t.Fatalf("a local store's watch fired %d times", events)
	}
}
