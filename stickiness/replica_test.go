package stickiness

import (
	"reflect"
	"testing"
)

func TestReplicaBindingsAndUnbindIf(t *testing.T) {
	tb, err := NewTable(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tb.Bind("s1", "r1", 0)
	tb.Bind("s2", "r1", 0)
	tb.Bind("s3", "r2", 0)
	tb.BindChannel("c1b", "s1", "r1")
	tb.BindChannel("c1a", "s1", "r1")
	tb.BindChannel("c4", "s4", "r1") // a channel whose session is pinned nowhere
	got := tb.ReplicaBindings("r1")
	want := []ReplicaClient{
		{ClientSID: "s1", Session: true, ChannelIDs: []string{"c1a", "c1b"}},
		{ClientSID: "s2", Session: true},
		{ClientSID: "s4", ChannelIDs: []string{"c4"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReplicaBindings(r1) = %+v, want %+v", got, want)
	}
	if len(tb.ReplicaBindings("r1")) != 3 || tb.SessionsOn("r1") != 2 {
		t.Fatal("ReplicaBindings must not remove anything")
	}
	if tb.UnbindIf("s3", "r1") {
		t.Fatal("UnbindIf removed a session bound to another replica")
	}
	if _, ok := tb.Lookup("s3"); !ok {
		t.Fatal("s3 lost its binding")
	}
	if !tb.UnbindIf("s1", "r1") || tb.UnbindIf("s1", "r1") {
		t.Fatal("UnbindIf(s1, r1): want true once, then false")
	}
	if tb.UnbindChannelIf("c1a", "r2") || !tb.UnbindChannelIf("c1a", "r1") {
		t.Fatal("UnbindChannelIf: want false for the wrong replica, true for the right one")
	}
	if _, ok := tb.LookupChannel("c1a"); ok {
		t.Fatal("c1a still bound")
	}
	if tb.SessionsOn("r1") != 1 {
		t.Fatalf("SessionsOn(r1) = %d, want 1", tb.SessionsOn("r1"))
	}
	if tb.UnbindIf("", "r1") {
		t.Fatal("UnbindIf with an empty key")
	}
}
